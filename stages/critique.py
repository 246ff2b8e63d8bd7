"""Stage `critique`: a verdict (score, written critique, confidence, source) for every
sampled response; expert labels override the critic; the least confident go to review.

Faithfulness is measured wherever it can be: agreement and Cohen's kappa with the suite's
ground truth (on the items that have gold or a label) and with human labels (when there
are some).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from pathlib import Path

from .critics import load_critic
from .errors import SuperalignError
from .params import CritiqueParams, recent_rounds
from .records import read_jsonl, read_jsonl_lines, write_jsonl
from .schema import LABEL, LABELLED, SAMPLE
from .stage import Stage, option, stage_main
from .suites import load_suite
from .suites.base import Suite
from .suites.grading import harmful_request
from .verdicts import ACCEPT, Critic, accepted, cohen_kappa

ORACLE = "oracle"  # the labeler name of simulated expert labels


def critique(
    samples: list[dict],
    critic: Critic,
    labels: dict[str, dict],
    params: CritiqueParams,
    suite: Suite,
    earlier: list[dict] = (),
) -> tuple[list[dict], list[dict], dict]:
    """(verdict records, review queue, metrics) for the round's samples.

    Expert labels (and, when `oracle_labels` is set, the suite's ground truth on the least
    confident verdicts, standing in for an expert) override the critic. A critic that
    can be calibrated (the yes/no judge) is first fitted on those labels and on the
    `earlier` rounds' labelled verdicts (`labelled_records`), and every one of its
    verdicts is read again with the fitted calibration.
    """
    if not samples:
        raise SuperalignError("critique: no samples to judge")
    judged = [_sample_fields(s) | v for s, v in zip(samples, critic.judge(samples), strict=True)]
    labels = labels | oracle_labels(
        judged,
        labels,
        params.oracle_labels,
        suite,
        params.oracle_pick,
        params.seed,
        params.oracle_harm_labels,
    )
    calibration = None
    if hasattr(critic, "calibrate"):
        accepts = {i: float(label["score"]) >= ACCEPT for i, label in labels.items()}
        accepts |= {record["id"]: record["accepted"] for record in earlier}
        harm = {r["id"]: r["harmful"] for r in [*labels.values(), *earlier] if "harmful" in r}
        calibration = critic.calibrate(
            judged + list(earlier), accepts, params.calibration_min_labels, harm
        )
        judged = [v | critic.rescore(v) for v in judged]
    verdicts = [with_label(record, labels.get(record["id"])) for record in judged]
    queue = review_queue(verdicts, params.review_budget)
    metrics = critique_metrics(verdicts, suite)
    if calibration is not None:
        metrics["calibration"] = dataclasses.asdict(calibration)
        metrics["calibration_labels_earlier"] = len(earlier)
    return verdicts, queue, metrics


def labelled_records(verdicts: list[dict], round_name: str) -> list[dict]:
    """The round's expert-labelled verdicts as later rounds' critique reads them: the
    critic's own view of the sample (what it read, before the label replaced its
    verdict), whether the expert accepted the response, and the round."""
    return [
        v["critic_verdict"]
        | {k: v[k] for k in SAMPLE_FIELDS}
        | {"accepted": accepted(v), "round": round_name}
        | ({"harmful": v["expert_harmful"]} if "expert_harmful" in v else {})
        for v in verdicts
        if v["source"] in ("human", "oracle")
    ]


def kept_labels(previous: list[dict], rounds: dict, round_name: str, n: int) -> list[dict]:
    """Of the labelled verdicts the previous round kept, those of the n-1 rounds before
    `round_name` in its policy chain: the calibration fits on them and the round's own."""
    before = recent_rounds(rounds, round_name, n)[:-1]
    return [r for r in previous if r["round"] in before]


def with_label(record: dict, label: dict | None) -> dict:
    """The record with an expert's label in place of the critic's verdict (kept beside it,
    as `critic_verdict`, for measuring the critic); unchanged without a label. The
    expert's answer on the request's harm, where given, is kept as `expert_harmful`."""
    if not label:
        return record
    critic_view = {k: v for k, v in record.items() if k not in SAMPLE_FIELDS}
    return record | {
        "score": float(label["score"]),
        "critique": label.get("critique") or record["critique"],
        "confidence": 1.0,
        "source": "oracle" if label.get("labeler") == ORACLE else "human",
        "labeler": label.get("labeler"),
        "critic_verdict": critic_view,
        **({"expert_harmful": label["harmful"]} if "harmful" in label else {}),
    }


def oracle_labels(
    verdicts: list[dict],
    labels: dict[str, dict],
    budget: int,
    suite: Suite,
    pick: str = "least_confident",
    seed: int = 0,
    harm: bool = False,
):
    """The suite's ground truth on `budget` verdicts nobody labelled, in the order `pick`
    draws them (`labelling_order`): a simulated expert, for measuring what a small label
    budget buys. Items without ground truth are skipped. With `harm`, the expert also
    says whether each request is harmful, where the item's label says."""
    # not the verdicts ground truth gave already (critique.verified_suites)
    unlabelled = [v for v in verdicts if v["id"] not in labels and not v.get("routed")]
    out = {}
    for v in labelling_order(unlabelled, pick, seed):
        if len(out) >= budget:
            break
        truth = suite.grade(v, v["response"])
        if truth is not None:
            out[v["id"]] = {
                "id": v["id"],
                "score": float(truth.correct),
                "critique": truth.critique,
                "labeler": ORACLE,
            }
            harmful = harmful_request(v) if harm else None
            if harmful is not None:
                out[v["id"]]["harmful"] = harmful
    return out


# What a verdict record carries over from its sample; the rest is the critic's.
SAMPLE_FIELDS = (
    "id",
    "query_id",
    "suite",
    "prompt",
    "response",
    "gold",
    "label",
    "bucket",
    "sample_index",
    "policy",
)


def _sample_fields(sample: dict) -> dict:
    return {k: sample.get(k) for k in SAMPLE_FIELDS}


def labelling_order(unlabelled: list[dict], pick: str, seed: int) -> list[dict]:
    """The verdicts in the order a simulated expert labels them: the least confident first
    (what review queues), a seeded shuffle (`random`), or (`split_by_refusal`) alternately
    from the quarter the yes/no judge reads as likeliest to decline (its refusal probe's
    raw reading, `p_refuses`) and from the rest, each shuffled. A learner that declines
    one time in ten gives a random 16 no decline, and then the refusal probe has nothing
    to fit on (README: Safety, judge-harm-seed1). Without the reading: `random`."""
    if pick == "least_confident":
        return review_queue(unlabelled, len(unlabelled))
    rng = random.Random(seed)
    ordered = sorted(unlabelled, key=lambda v: v["id"])
    if pick == "random" or not all("p_refuses" in v for v in ordered):
        rng.shuffle(ordered)
        return ordered
    by_reading = sorted(ordered, key=lambda v: -v["p_refuses"])
    quarter = max(1, len(ordered) // 4)
    likeliest, rest = by_reading[:quarter], by_reading[quarter:]
    rng.shuffle(likeliest)
    rng.shuffle(rest)
    alternate = itertools.zip_longest(likeliest, rest)
    return [v for pair in alternate for v in pair if v is not None]


def review_queue(verdicts: list[dict], budget: int) -> list[dict]:
    """The least confident critic verdicts (null verdicts first) an expert has not labelled."""
    open_items = [
        v for v in verdicts if v["source"] not in ("human", "oracle") and not v.get("routed")
    ]
    open_items.sort(key=lambda v: (v["confidence"] is not None, v["confidence"] or 0.0, v["id"]))
    return open_items[:budget]


def critique_metrics(verdicts: list[dict], suite: Suite) -> dict:
    critic_view = [v.get("critic_verdict", v) for v in verdicts]
    routed = sum(bool(v.get("routed")) for v in critic_view)
    given = [v for v in critic_view if v["score"] is not None]
    metrics = {
        "items": len(verdicts),
        "null_verdicts": len(verdicts) - len(given),
        "null_rate": 1 - len(given) / len(verdicts),
        "accept_rate": _mean([accepted(v) for v in verdicts if v["score"] is not None]),
        "mean_score": _mean([v["score"] for v in verdicts if v["score"] is not None]),
        "human_labels": sum(v["source"] == "human" for v in verdicts),
        "oracle_labels": sum(v["source"] == "oracle" for v in verdicts),
    }
    if routed:  # judged by their suite's ground truth (critique.verified_suites)
        metrics["routed_to_verifier"] = routed
    truths = [suite.grade(v, v["response"]) for v in verdicts]
    gold_pairs = [
        (accepted(c), truth.correct)
        for truth, c in zip(truths, critic_view)
        if truth is not None and c["score"] is not None and not c.get("routed")
    ]
    if gold_pairs:  # critic faithfulness against the suite's ground truth
        metrics["agreement_with_gold"] = _mean([a == g for a, g in gold_pairs])
        metrics["kappa_with_gold"] = cohen_kappa(*map(list, zip(*gold_pairs)))
    human = [
        (accepted(v["critic_verdict"]), accepted(v))
        for v in verdicts
        if v["source"] == "human" and v["critic_verdict"]["score"] is not None
    ]
    if human:
        metrics["agreement_with_human"] = _mean([a == h for a, h in human])
        metrics["kappa_with_human"] = cohen_kappa(*map(list, zip(*human)))
    return metrics


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def load_labels(
    path: str | Path,
    round_name: str | None = None,
    sample_ids: set[str] | None = None,
    kind: str = "sample",
) -> dict[str, dict]:
    """Expert verdicts keyed by sample id (a later line for the same id wins).

    The file holds every round's labels. A label that says which round it was made in
    (`round`, written by `superalign review`) must name one of that round's samples
    (`sample_ids`), or of its revisions when `kind` is "revision" (labels say which with
    `of`): otherwise its id is mistyped or the round's samples changed since it was made,
    and silently ignoring it would lose a human's judgement.
    """
    if not Path(path).exists():
        return {}
    rows = read_jsonl(path, required=LABEL)
    labels = {}
    for index, label in enumerate(rows):
        if not isinstance(label["score"], (int, float)) or not 0 <= label["score"] <= 1:
            raise SuperalignError(f"{path}: label {label['id']} needs a score in [0, 1]")
        if not isinstance(label.get("harmful", False), bool):
            raise SuperalignError(f"{path}: label {label['id']}: harmful must be true or false")
        of = label.get("of", "sample")  # "revision": a label of stage revise's output
        if (
            round_name is not None
            and sample_ids is not None
            and label.get("round") == round_name
            and of == kind
            and label["id"] not in sample_ids
        ):
            lineno = read_jsonl_lines(path)[index][0]  # read again only to name the line
            raise SuperalignError(
                f"{path}:{lineno}: label for {kind} {label['id']} of {round_name}, which "
                f"has no such {kind} (mistyped, or {round_name} was redone since; "
                f"fix or delete the line, then `superalign review {round_name}`)"
            )
        labels[label["id"]] = label
    return labels


@stage_main(
    "critique",
    __doc__,
    option("--samples", required=True),
    option("--labels", required=True, help="git-tracked expert labels (JSON Lines)"),
    option("--rubric", required=True, help="the suite's rubric, applied by the llm_judge"),
    option("--base", required=True, help="base checkpoint (default judge model)"),
    option("--out", required=True, help="verdicts JSON Lines"),
    option("--queue", required=True, help="review queue JSON Lines"),
    option("--metrics", required=True),
    option("--labelled-from", required=True, help="the labelled verdicts round K-1 kept"),
    option("--labelled", required=True, help="where to write the labelled verdicts kept"),
    logs=("critique", "served"),
)
def main(stage: Stage) -> None:
    args, p = stage.args, stage.params["critique"]
    samples = read_jsonl(args.samples, required=SAMPLE)
    labels = load_labels(args.labels, stage.round, {s["id"] for s in samples})
    previous = read_jsonl(args.labelled_from, required=LABELLED)
    earlier = kept_labels(previous, stage.params["rounds"], stage.round, p.calibration_rounds)
    suite = load_suite(stage.params["suite"])
    critic = load_critic(stage.params, suite, args.rubric, args.base)
    verdicts, queue, metrics = critique(samples, critic, labels, p, suite, earlier)
    write_jsonl(args.out, verdicts)
    write_jsonl(args.queue, queue)
    write_jsonl(args.labelled, earlier + labelled_records(verdicts, stage.round))
    stage.write_metrics(args.metrics, metrics)
    print(
        f"critique@{stage.round}: {metrics['items']} verdicts by {critic.name}, "
        f"{metrics['null_verdicts']} null, accept rate {metrics['accept_rate'] or 0:.2f}"
    )


if __name__ == "__main__":
    main()
