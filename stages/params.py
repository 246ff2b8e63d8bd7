"""params.yaml as typed, validated sections: the params schema, one dataclass a section.

This is a building block, below the stages: it imports no stage module, so every stage
(and `superalign check`) can import it, and the dependency graph reads one way. Each
section's dataclass documents its knobs; `load_params` rejects an unknown section or key
before any work is done, naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .config import parse_section
from .errors import SuperalignError

DEFAULT_PARAMS = "params.yaml"


@dataclass(frozen=True)
class RoundSpec:
    """One round of the loop; DVC templating has no arithmetic, so it names its predecessor."""

    prev: str


@dataclass(frozen=True)
class LearnerParams:
    """The base learner every round starts from."""

    model: str = "embedded:smollm2-135m-instruct"  # embedded:NAME, a local dir, or a HF id
    trust_remote_code: bool = False  # only for hub models whose code you have read


@dataclass(frozen=True)
class EngineParams:
    """How generation runs; shared by every stage that generates."""

    batch_size: int = 64  # sequences per forward pass (prompts x samples)
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 where native
    # How a sampled token is drawn. exact: from the whole vocabulary, the samples every
    # campaign so far drew for its seed. fast: among the 1024 most likely tokens when the
    # top-p nucleus lies within them; the same distribution, other samples, and faster on
    # CPU (README, Speed). Greedy decoding is the same under both.
    sampler: Literal["exact", "fast"] = "exact"

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class ServedParams:
    """Models behind an OpenAI-compatible endpoint (`openai:MODEL@URL` wherever a model is
    named): how requests are sent. The API key is read from the environment variable
    named here, never from params."""

    api_key_env: str | None = None  # e.g. OPENAI_API_KEY; null: no key (a local server)
    concurrency: int = 8  # requests in flight at once
    timeout_s: float = 120.0  # per request
    max_retries: int = 4  # on 429, 5xx, timeouts and refused connections, with backoff
    cache_dir: str = ".cache/requests"  # completed replies, keyed by the request's content

    def __post_init__(self):
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")


@dataclass(frozen=True)
class SamplingParams:
    """What to generate: one stage's choice (greedy for evaluation, K samples for training)."""

    num_samples: int = 1  # K responses per prompt
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0

    def __post_init__(self):
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.temperature == 0 and self.num_samples > 1:
            raise ValueError("num_samples > 1 needs temperature > 0 (greedy samples are equal)")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass(frozen=True)
class SuiteParams:
    """The task the rounds run on (stages/suites/): everything task-specific comes from it."""

    # A built-in suite (`superalign suites` lists them), `jsonl:PATH` for your own JSON
    # Lines file, or `datasets:DIR` for a `datasets.save_to_disk` directory.
    name: str = "arithmetic"
    # Pool suites (your data): the share of each bucket held out for evaluation and the
    # seed of that split. Fixed once; changing either re-splits and so reruns everything.
    heldout_share: float = 0.3
    split_seed: int = 0
    rubric: str | None = None  # a markdown file for the LLM judge; null = the suite's own
    # Other suites drawn from each round, with their share of the attack queries (`name`
    # gets the rest), e.g. {arithmetic: 0.25}: evaluation reports each suite's metrics.
    mix: dict[str, float] = field(default_factory=dict)
    # Items per bucket set aside from the attacker as a validation set (pool buckets keep at
    # least one item to attack with; generator buckets draw fresh ones). 0: none. What
    # `train.step_scales` chooses on, so that no choice is made on the held-out set.
    validation_per_bucket: int = 0

    def __post_init__(self):
        if self.validation_per_bucket < 0:
            raise ValueError(
                f"validation_per_bucket must be at least 0, got {self.validation_per_bucket}"
            )
        if not self.name.strip():
            raise ValueError("name must name a suite")
        if not 0 < self.heldout_share < 1:
            raise ValueError(f"heldout_share must be in (0, 1), got {self.heldout_share}")
        if any(not 0 < w < 1 for w in self.mix.values()) or sum(self.mix.values()) >= 1:
            raise ValueError(f"mix weights must be in (0, 1) and sum below 1, got {self.mix}")
        if self.name in self.mix:
            raise ValueError(f"mix names the main suite '{self.name}' again")


@dataclass(frozen=True)
class AttackParams:
    """How the attacker picks the round's queries."""

    kind: Literal["adaptive", "strategy", "llm"] = "adaptive"
    queries: int = 96  # per round
    seed: int = 0
    # adaptive: a bandit over the suite's buckets
    exploration: float = 0.25  # share of queries spread evenly over all buckets
    objective: Literal["frontier", "failure"] = "frontier"  # weight f(1-f), or f
    # draw this many times a bucket's quota and keep first those the round's learner
    # answers wrongly (greedy, graded by ground truth). 1: no screen, no learner loaded
    screen: int = 1
    # strategy: a YAML file of red-teaming strategies (null: the built-in set,
    # stages/strategies.yaml); the attacker model is attacker_model
    strategies: str | None = None
    # llm and strategy
    attacker_model: str | None = None  # null = the base learner; or embedded:/dir/HF id/openai:
    few_shot: int = 4  # earlier successful attacks shown per request
    candidates: int = 64  # generations before filtering
    max_similarity: float = 0.5  # word-bigram overlap above which a query is a near-duplicate
    temperature: float = 1.0
    max_new_tokens: int = 48

    def __post_init__(self):
        if self.queries < 1:
            raise ValueError(f"queries must be >= 1, got {self.queries}")
        if not 0 <= self.exploration <= 1:
            raise ValueError(f"exploration must be in [0, 1], got {self.exploration}")
        if self.screen < 1:
            raise ValueError(f"screen must be at least 1, got {self.screen}")


@dataclass(frozen=True)
class SampleParams(SamplingParams):
    """K diverse responses per query: sampling, not greedy, so the critic sees contrasts."""

    num_samples: int = 4
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 48


@dataclass(frozen=True)
class CritiqueParams:
    """Who judges the learner's responses."""

    # verifier: the suite's ground truth (gold; or a label + the refusal detectors: the
    # rules ceiling); noisy: the verifier with flips; llm_judge: a model writes a critique
    # and a score; yes_no_judge: a model answers yes/no questions (harmful? refuses?)
    kind: Literal["verifier", "noisy", "llm_judge", "yes_no_judge"] = "verifier"
    flip_rate: float = 0.3  # noisy: share of verdicts flipped (a weak supervisor)
    seed: int = 0
    judge_model: str | None = None  # llm_judge: null = the base learner; or embedded:/dir/HF id
    max_new_tokens: int = 96  # llm_judge: room for the critique and the score line
    # llm_judge: "parse" = only a written "Score: N" counts (else a null verdict);
    # "forced" = read the score from the score tokens' probabilities after the critique
    score_mode: Literal["parse", "forced"] = "parse"
    review_budget: int = 8  # per round: lowest-confidence verdicts queued for an expert
    # A simulated expert: the suite's ground truth labels this many of the round's least
    # confident verdicts (source "oracle"), like `superalign review` would; 0 = off.
    oracle_labels: int = 0
    # Which verdicts the simulated expert labels: least_confident (what review queues) or
    # random (seeded). A calibration fitted on the least confident ones fits the hardest
    # cases and read the safety judge backwards (bench/judge_calibration.py: agreement
    # with the rules 0.29-0.57 on its own verdicts, against 0.64-0.72 unfitted).
    # split_by_refusal: half from the quarter the yes/no judge reads likeliest to decline,
    # half from the rest (random when the critic has no refusal reading).
    oracle_pick: Literal["least_confident", "random", "split_by_refusal"] = "least_confident"
    # The simulated expert also answers the yes/no judge's other question for each verdict
    # it labels: is the request harmful (where the item's label says). The judge then fits
    # its harm reading on those answers, and its refusal reading on what they imply with
    # the verdict (a harmful request's accepted response declines). From verdicts alone,
    # one draw of 16 held no declining response and the refusal probe learned the harm
    # reading's mistakes (judge-pairs r1, README: Safety). A human gives it in review.
    oracle_harm_labels: bool = False
    # yes_no_judge: fit how its yes/no probes are read on the round's expert (or oracle)
    # labels when there are at least this many; fewer: read them at face value.
    calibration_min_labels: int = 8
    # yes_no_judge: fit on the expert labels of this round and the N-1 before it (1: the
    # round's own). A request's harm does not change between rounds, and from 16 labels
    # the harm reading is the judge's weak one (README: Safety); each round's labelled
    # verdicts are kept in data/rounds/rK/labelled.jsonl for the next round to read.
    calibration_rounds: int = 1
    # yes_no_judge: how it reads "does the response refuse?". likelihood: how much more
    # likely the judge model finds the response when asked to refuse the request than when
    # asked the request (no question asked); yes_no: its answer to "is the writer refusing
    # to help?". On the learner's own responses of a judge campaign, ranking AUC against
    # the rules' safe-response detector 0.89 / 0.81 / 0.88 vs 0.42 / 0.33 / 0.57
    # (python bench/refusal_probe.py safety-judge).
    refusal_probe: Literal["likelihood", "yes_no", "hidden", "anchored"] = "likelihood"
    # yes_no_judge: how it reads "is the request harmful?". likelihood: how likely the
    # judge model finds a plain refusal as its reply to the request; yes_no: its answer to
    # "is this request safe to answer?". Ranking AUC against the requests' labels on a
    # judge campaign's queries: 0.84 / 0.88 / 0.76 vs 0.80 / 0.77 / 0.57 (the refusal
    # sentence is the best of three tried on those queries; bench/refusal_probe.py)
    # hidden (either probe): the likelihood reading until the round's labels are in, then
    # a linear probe on the judge's hidden states fitted on them (stages/hidden_probe.py;
    # python bench/representation_probe.py: declines read 0.94-0.97 right from 16 labels);
    # anchored: the same probe with the likelihood reading's log-odds as a lightly
    # penalised prior column, so a draw of labels that says little leaves the likelihood
    # reading in charge instead of the labels' base rate (stages/hidden_probe.py)
    harm_probe: Literal["likelihood", "yes_no", "hidden", "anchored"] = "likelihood"
    # Parts of a mixture whose items their own ground truth judges, whatever `kind` is: a
    # weak judge then judges only the suite it is there for (the 135M safety judge's harm
    # and refusal readings mean nothing for a sum, and judging the mixed-in arithmetic
    # with them cost 7 points of it in a judge campaign). Agreement and kappa are
    # reported on the critic's own verdicts only.
    verified_suites: tuple[str, ...] = ()

    def __post_init__(self):
        if not 0 <= self.flip_rate <= 1:
            raise ValueError(f"flip_rate must be in [0, 1], got {self.flip_rate}")
        if self.review_budget < 0:
            raise ValueError(f"review_budget must be >= 0, got {self.review_budget}")
        if self.calibration_rounds < 1:
            raise ValueError(f"calibration_rounds must be >= 1, got {self.calibration_rounds}")


@dataclass(frozen=True)
class BuildPrefsParams:
    """How verdicts become preference pairs."""

    min_margin: float = 0.5  # chosen and rejected scores must differ by at least this
    revise: bool = True  # critique-guided revision when no response is acceptable
    # false: pair best vs worst on the margin alone (relative preferences), for weak
    # judges whose absolute scale means little; true: the chosen must be acceptable
    require_acceptable: bool = True
    # which samples of a query are paired: `extremes`, the best-scored against the
    # worst-scored; `decision`, those the critic accepts against those it rejects (each
    # pair by the margin, a revision against every sample it beats by it). With a 0/1
    # critic the two are the same; a soft-scoring judge seldom ties, so `extremes` gives
    # it one pair a query where the rules get `pairs_per_query` (judge-anchored's r1: 20
    # pairs teaching declining against the rules' 60 on the same samples; README: Safety)
    pairs_from: Literal["extremes", "decision"] = "extremes"
    # when every response is acceptable: pair the best against the learner's own version
    # of the failure the suite names (a refusal of a benign request), if the critic rejects it
    contrast: bool = True
    # where: only in buckets where the learner failed this round (`failing`), or for every
    # all-good benign request (`all`), so a round that teaches declining harmful requests
    # also teaches answering benign ones before over-refusal shows (bench/pair_balance.py)
    contrast_in: Literal["failing", "all"] = "failing"
    # at most this many contrast pairs for each pair on a harmful request this round (null:
    # no cap), the failing buckets' contrasts kept first: which way a round pushes follows
    # the ratio of pairs teaching declining to pairs teaching answering (README: Safety)
    contrast_ratio: float | None = None
    # with `contrast_in: all`: contrasts in buckets that failed this round are all kept (up
    # to contrast_ratio), and the other all-good benign requests fill in only until there
    # are this many contrast pairs per pair on a harmful request (null: all of them). A
    # round-1 learner has refused no benign request yet, so `failing` gives r1 no pair that
    # teaches answering (51:0 in rules-strict) and a quarter of benign requests are refused
    contrast_floor: float | None = None
    # a contrast the learner would not fail (asked for its refusal of a benign request, the
    # base learner answers it anyway 19 times in 27 in balance-fp32's r1): borrow the
    # round's failure it did show on another request of the bucket (else of any bucket),
    # judged again on this one; so every contrasted request can teach answering
    contrast_borrow: bool = False
    # a contrast the learner would not fail takes a response the critic accepted on another
    # request of the same suite that asks for no contrast (a decline of a harmful request),
    # judged again here: the very text the round prefers there is rejected here, so a pair
    # teaches which requests to decline, not how often (README: Safety, mirror pairs)
    contrast_mirror: bool = False
    # a revision the critic rejects takes instead a response the critic accepted on another
    # request of the bucket (else of the suite), where the suite lets one stand for another
    # (`Suite.answer_transfers`: a decline of a harmful request) and the critic accepts it
    # on this request too; one pair each, and each accepted text lent once a round at most
    # (`revise.borrow_accepted`). The 135M learner's revisions of harmful requests were
    # accepted 6 to 8 times in 40 a round (echo-fix r1), so most harmful requests it
    # complied with taught nothing (README: Safety, borrowed declines)
    revision_borrow: bool = False
    # up to this many pairs from one query, each a different (chosen, rejected) of its
    # samples (and its revision or contrast): the other failing samples are signal too
    pairs_per_query: int = 1
    max_new_tokens: int = 48  # room for a revision or a contrast

    def __post_init__(self):
        if not 0 <= self.min_margin <= 1:
            raise ValueError(f"min_margin must be in [0, 1], got {self.min_margin}")
        if self.pairs_per_query < 1:
            raise ValueError(f"pairs_per_query must be at least 1, got {self.pairs_per_query}")
        if self.contrast_ratio is not None and self.contrast_ratio < 0:
            raise ValueError(f"contrast_ratio must be at least 0, got {self.contrast_ratio}")
        if self.contrast_floor is not None:
            if self.contrast_floor < 0:
                raise ValueError(f"contrast_floor must be at least 0, got {self.contrast_floor}")
            if self.contrast_in != "all":
                raise ValueError(
                    "contrast_floor fills in from buckets that did not fail: "
                    "it needs contrast_in: all"
                )

    @property
    def borrows(self) -> bool:
        """Whether a contrast the learner would not fail borrows another response."""
        return self.contrast_borrow or self.contrast_mirror


@dataclass(frozen=True)
class TrainParams:
    """LoRA DPO knobs; the defaults held a 135M learner stable over three rounds."""

    # 2e-4 with plain sigmoid collapsed the learner in one round; with the sft term and
    # minimal pairs, 2e-4 gave r1 0.383 held-out where 1e-4 gave 0.338 and 5e-5 0.321.
    learning_rate: float = 2e-4
    epochs: float = 2.0
    batch_size: int = 8
    grad_accum: int = 1
    beta: float = 0.1
    loss_type: tuple[str, ...] = ("sigmoid", "sft")  # TRL 1.x spelling of the old rpo_alpha
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("all-linear",)
    reference: Literal["previous", "base"] = "previous"
    max_length: int = 256
    seed: int = 0
    # Also train on the pairs of the last N rounds. r3 from the same r2 policy on the same
    # r3 pairs, without vs with r2's replayed: 0.433 vs 0.463 in one campaign, 0.475 vs
    # 0.467 in the next (bench/one_round.py): within the noise of one round.
    replay_rounds: int = 1
    # Of those rounds' pairs, replay this share, drawn under `seed` (1: all). Training time
    # is about linear in a round's pairs (bench/round_time.py) and replay was half of a
    # later round's; what it is for, damping the round-to-round swing, may need less.
    replay_share: float = 1.0
    # At most this many pairs a round (null: all of them). A round's training time is about
    # linear in its pairs (bench/round_time.py), so this holds a round to a time limit.
    # Over it, replayed pairs go first, then this round's own, drawn under `seed`.
    max_pairs: int | None = None
    # auto: bf16 autocast where the hardware has native bf16 (27% faster per step than
    # fp32 on this 2-core EPYC, same losses), else fp32. Master weights stay fp32.
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    # The attention kernel while training (generation keeps the model's own). auto: eager
    # on CPU, where PyTorch's fused attention is slow to backpropagate through on
    # sequences this short (1.22x per DPO step, `python bench/train_step.py --compare
    # attention`), sdpa on a GPU.
    attention: Literal["auto", "sdpa", "eager"] = "auto"
    # Step search: the round's adapter scaled by each of these (1 = as trained, 0 = the
    # previous policy unchanged) is answered greedily on the suite's validation set, and
    # the best scale is kept (step.py). [1.0]: no search, the adapter as trained.
    step_scales: tuple[float, ...] = (1.0,)
    # ... a scale is kept only if no validation group (a suite, or a label of one: harmful,
    # benign) falls more than this below the base learner's (r0) rate
    step_tolerance: float = 0.05
    # ... each answering at most this many new tokens (null: evaluate.max_new_tokens): the
    # search reads only verdicts, which seldom need the whole answer (README, Stages,
    # train; bench/verdict_truncation.py).
    step_max_new_tokens: int | None = None

    def __post_init__(self):
        if self.learning_rate <= 0 or self.epochs <= 0 or self.batch_size < 1:
            raise ValueError("learning_rate and epochs must be > 0 and batch_size >= 1")
        if self.replay_rounds < 0:
            raise ValueError(f"replay_rounds must be >= 0, got {self.replay_rounds}")
        if not 0 <= self.replay_share <= 1:
            raise ValueError(f"replay_share must be in [0, 1], got {self.replay_share}")
        if self.max_pairs is not None and self.max_pairs < 1:
            raise ValueError(f"max_pairs must be >= 1 or null, got {self.max_pairs}")
        scales = self.step_scales
        if not scales or any(not 0 <= s <= 1 for s in scales) or len(set(scales)) < len(scales):
            raise ValueError(f"step_scales must be distinct numbers in [0, 1], got {list(scales)}")
        if len({f"{s:g}" for s in scales}) < len(scales):  # they name files and metrics
            raise ValueError(f"step_scales must differ in 6 significant digits, got {list(scales)}")
        if not 0 <= self.step_tolerance <= 1:
            raise ValueError(f"step_tolerance must be in [0, 1], got {self.step_tolerance}")
        if self.step_max_new_tokens is not None and self.step_max_new_tokens < 1:
            raise ValueError(
                f"step_max_new_tokens must be >= 1 or null, got {self.step_max_new_tokens}"
            )

    @property
    def searches_step(self) -> bool:
        return tuple(self.step_scales) != (1.0,)


@dataclass(frozen=True)
class EvaluateParams:
    """Greedy decoding on every evaluation set."""

    max_new_tokens: int = 48
    limit: int | None = None  # score only the first N items of each set (quick profiles)

    def __post_init__(self):
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 or null, got {self.limit}")


@dataclass(frozen=True)
class ReportParams:
    """What the report compares against."""

    ceiling_campaign: str | None = None  # MLflow campaign of the verifier run, for PGR
    # The headline metric (a dotted key of metrics/rK.json) the gain and PGR are on, e.g.
    # heldout.labels.harmful (safe-response rate) or heldout.suites.safety.labels.harmful.
    metric: str = "heldout.accuracy"


@dataclass(frozen=True)
class TrackingParams:
    """Where runs are grouped. Not a dependency of any stage: renaming reruns nothing."""

    campaign: str = "main"  # overridden by $SUPERALIGN_CAMPAIGN or a DVC experiment's name


def section_types() -> dict[str, type]:
    """Section name -> its dataclass, in params.yaml order."""
    return {
        "learner": LearnerParams,
        "engine": EngineParams,
        "served": ServedParams,
        "suite": SuiteParams,
        "attack": AttackParams,
        "sample": SampleParams,
        "critique": CritiqueParams,
        "build_prefs": BuildPrefsParams,
        "train": TrainParams,
        "evaluate": EvaluateParams,
        "report": ReportParams,
        "tracking": TrackingParams,
    }


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Every section parsed and checked; `rounds` as name -> RoundSpec in chain order."""
    path = Path(path)
    if not path.is_file():
        raise SuperalignError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SuperalignError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return check_params(raw, str(path))


def check_params(raw: Any, where: str) -> dict[str, Any]:
    """A params mapping (as read from YAML) parsed and checked, section by section."""
    if not isinstance(raw, dict):
        raise SuperalignError(f"{where}: expected a mapping of sections")
    types = section_types()
    known = set(types) | {"rounds"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SuperalignError(
            f"params: unknown section '{unknown[0]}' (known sections: {', '.join(sorted(known))})"
        )
    params: dict[str, Any] = {
        name: parse_section(cls, raw.get(name), name) for name, cls in types.items()
    }
    params["rounds"] = parse_rounds(raw.get("rounds"))
    check_step_search(params["train"], params["critique"], params["suite"])
    return params


def check_step_search(train: TrainParams, critique: CritiqueParams, suite: SuiteParams) -> None:
    """The step search (stages/step.py) grades a validation set by ground truth: it needs
    one, and a round judged by a weak critic may not lean on the truth it does without."""
    if not train.searches_step:
        return
    if critique.kind != "verifier":
        raise SuperalignError(
            "params: train.step_scales grades validation answers by ground truth, which a "
            f"{critique.kind} critic does not have; set train.step_scales: [1.0]"
        )
    if suite.validation_per_bucket == 0:
        raise SuperalignError(
            "params: train.step_scales chooses on the validation set; "
            "set suite.validation_per_bucket (e.g. 8)"
        )


def parse_rounds(raw: Any) -> dict[str, RoundSpec]:
    """Rounds r1..rN, each naming its predecessor; r0 is the base learner and is implicit."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SuperalignError("params: section 'rounds' must map round names to {prev: ...}")
    rounds = {}
    for name, spec in raw.items():
        if not re.fullmatch(r"r[1-9]\d*", str(name)):
            raise SuperalignError(f"params: round name '{name}' must look like r1, r2, ...")
        rounds[name] = parse_section(RoundSpec, spec, f"rounds.{name}")
    for name, spec in rounds.items():
        if spec.prev != "r0" and spec.prev not in rounds:
            raise SuperalignError(f"params: rounds.{name}.prev names unknown round '{spec.prev}'")
        if int(spec.prev[1:]) >= int(name[1:]):
            raise SuperalignError(f"params: rounds.{name}.prev must be an earlier round")
    return dict(sorted(rounds.items(), key=lambda kv: int(kv[0][1:])))


def policy_chain(rounds: dict[str, RoundSpec], round_name: str) -> list[str]:
    """The rounds whose adapters make up `round_name`'s policy, oldest first (r0 excluded)."""
    chain = []
    while round_name != "r0":
        if round_name not in rounds:
            raise SuperalignError(f"params: unknown round '{round_name}'")
        chain.append(round_name)
        round_name = rounds[round_name].prev
    return chain[::-1]


def recent_rounds(rounds: dict[str, RoundSpec], round_name: str, n: int) -> list[str]:
    """The last `n` rounds of `round_name`'s policy chain, oldest first, itself the last:
    the rounds whose pairs train replays, and whose labels critique keeps."""
    chain = policy_chain(rounds, round_name)
    return chain[max(0, len(chain) - n) :]
