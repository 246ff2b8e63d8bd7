"""Stage `revise`: the learner's second try at what the round's verdicts ask for, judged.

Between `critique` and `build_prefs`. For each query `build_prefs.plan` says needs one:
- a **revision**: no sample was acceptable, so the previous policy answers the question
  again with the critic's critique of its most concise failure beside it (critique-guided
  revision, as in the paper's framework);
- a **contrast**: every sample was acceptable, but the learner failed elsewhere in the
  query's bucket this round, so it is asked for the failure the suite names (for a benign
  request: its own refusal). With `build_prefs.contrast_borrow`, a contrast the learner
  would not fail takes a failure it showed on another request this round instead, and
  with `build_prefs.contrast_mirror` a response accepted on a request that asks for no
  contrast (a decline of a harmful request) may be that failure (`borrow_failures`).

Each is judged by the round's critic, like any sample, and written to `revisions.jsonl`
with its verdict. Expert labels (`data/labels.jsonl`, keyed by the revision's id)
override the critic here as in `critique`, and the least confident verdicts go to this
round's revision review queue (`superalign review rK` walks it after the samples').
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .build_prefs import Plan, contrast_failed, most_concise, plan
from .critics import load_critic
from .critique import load_labels, review_queue, with_label
from .engine import Engine, SamplingParams
from .params import BuildPrefsParams
from .policy import load_policy
from .records import read_jsonl, record_id, write_jsonl
from .schema import VERDICT, conversation
from .served import ServedEngine
from .stage import Stage, option, stage_main
from .suites import load_suite
from .suites.base import Suite
from .verdicts import ACCEPT, Critic

# The question again with the critique beside it, in one user turn. Measured on r1's 84
# failed queries with the verifier: 71 revisions accepted, 18 characters on average. The
# earlier wording (the old answer as an assistant turn, then "write an improved answer")
# got 49 accepted, averaging 112 characters, mostly echoes of the prompt ("The original
# question was: ...") that then became SFT targets.
REVISION_REQUEST = "{prompt}\n\nA reviewer checked an earlier answer to this question: {critique}"

# What a revision record carries over from the sample it answers for.
CARRIED = ("query_id", "suite", "prompt", "gold", "label", "bucket", "policy")


def revision_chat(verdict: dict) -> list[dict]:
    request = REVISION_REQUEST.format(prompt=verdict["prompt"], critique=verdict["critique"])
    return conversation(request)


def revise(
    todo: Plan,
    learner: Engine | ServedEngine,
    critic: Critic,
    params: BuildPrefsParams,
    suite: Suite | None = None,
) -> list[dict]:
    """Revision and contrast records, each with the critic's verdict, in plan order
    (`suite`: which requests may borrow a response, `build_prefs.revision_borrow`)."""
    sampling = SamplingParams(max_new_tokens=params.max_new_tokens)
    # (the verdict it answers for, the chat the learner gets). Each revision shows the
    # query's most concise failure, with the critique the learner revises from.
    revisions = [most_concise(group) for group, _ in todo.to_revise]
    asks = {
        "revision": [(shown, revision_chat(shown)) for shown in revisions],
        "contrast": [(most_concise(top), conversation(req)) for top, req in todo.to_contrast],
    }
    records = []
    # One generate call per kind, as build_prefs made them: batches (and so the texts)
    # stay what they were before this stage existed.
    for kind, these in asks.items():
        if not these:
            continue
        texts = [t[0] for t in learner.generate([chat for _, chat in these], sampling).texts]
        judged = critic.judge([v | {"response": t} for (v, _), t in zip(these, texts)])
        if kind == "revision":
            judged = [
                copied_verdict(v) if repeats_critique(t, shown["critique"]) else v
                for (shown, _), t, v in zip(these, texts, judged, strict=True)
            ]
        for (answered, chat), text, verdict in zip(these, texts, judged, strict=True):
            records.append(
                {k: answered.get(k) for k in CARRIED}
                | {
                    "id": record_id(kind, answered["id"], text),
                    "kind": kind,
                    "response": text,
                    "answers_for": answered["id"],
                    "request": chat[0]["content"],
                }
                | verdict
            )
    if params.revision_borrow and suite is not None:
        records = borrow_accepted(records, todo, critic, suite)
    if params.borrows:
        records = borrow_failures(records, todo, critic, params)
    return records


# A revision that copies this many consecutive words of the critique it was shown repeats
# the advice instead of taking it ('A good answer starts with "I can't help with that" and
# says why it could hurt someone.' back as the answer). A critic that reads only whether a
# response refuses (the 135M judge) accepts such a copy as a refusal, and the learner
# learned to answer everything with it (README, Safety: "Where it stood (stop 35)"). Seven
# words: a real refusal shares at most "I can't help with that" (five) with the safety
# critique, an arithmetic revision "the correct answer is N" with the verifier's.
COPIED_WORDS = 7


def repeats_critique(text: str, critique: str | None, n: int = COPIED_WORDS) -> bool:
    """True when `text` has a run of `n` consecutive words (case folded) of `critique`."""
    if not critique:
        return False

    def runs(words: list[str]) -> set[tuple[str, ...]]:
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    def words(t: str) -> list[str]:
        return re.findall(r"[\w']+", t.casefold().replace("\u2019", "'"))

    return bool(runs(words(text)) & runs(words(critique)))


def copied_verdict(verdict: dict) -> dict:
    """The verdict on a revision that repeats its critique: rejected, whatever the critic
    read, since it answers nothing (an expert label still overrides it, in `main`)."""
    return verdict | {
        "score": 0.0,
        "critique": "Repeated the critique it was shown instead of revising the answer.",
        "copied_critique": True,
    }


def borrow_accepted(records: list[dict], todo: Plan, critic: Critic, suite: Suite) -> list[dict]:
    """`records` with each revision the critic rejected (or could not judge) replaced by a
    response it accepted on another request that asks for no contrast (`mirror_donors`),
    where the suite lets one stand for another (`Suite.answer_transfers`: a decline of a
    harmful request) and the critic, asked again, accepts it on this request too
    (`build_prefs.revision_borrow`).

    Each accepted text is lent once a round at most: borrow-seed3's r1 lent 10 texts to 35
    requests, one of them 11 times, and the next round declined benign requests as readily
    (0.975 -> 0.600 answered; README: Safety, borrowed declines). So a round borrows no
    more declines than it wrote itself. The donor comes from the same bucket if an unused
    one does, else from any request of the suite, the closest in length to the failure
    the revision was shown (a pair differs in kind, not length). The record keeps the
    learner's own revision (`revised_response`) and names its donor (`borrowed_from`).
    """
    shown = {most_concise(group)["id"]: most_concise(group) for group, _ in todo.to_revise}
    donors: dict[str, dict] = {}  # one donor per text
    for donor in mirror_donors(records, todo):
        donors.setdefault(donor["response"], donor)
    wanting = [
        r
        for r in records
        if r["kind"] == "revision"
        and (r["score"] is None or r["score"] < ACCEPT)
        and suite.answer_transfers(r)
    ]
    lent: set[str] = set()
    picks = {}
    for record in wanting:
        unlent = [
            d
            for d in donors.values()
            if d["query_id"] != record["query_id"] and d["response"] not in lent
        ]
        length = len(shown[record["answers_for"]]["response"])
        pick = closest_donor(record, unlent, length)
        if pick is not None:
            lent.add(pick["response"])
            picks[record["id"]] = pick

    def accepted(record: dict, verdict: dict) -> bool:
        return verdict["score"] is not None and verdict["score"] >= ACCEPT

    return lend(
        records, picks, lambda r: shown[r["answers_for"]], critic, accepted, "revised_response"
    )


def mirror_donors(records: list[dict], todo: Plan) -> list[dict]:
    """The round's accepted responses (samples, then revisions) to the queries that ask
    for no contrast of their own (`Plan.mirrored`), as donors: for the safety suite, the
    declines the round prefers on harmful requests."""
    samples = [v for accepted in todo.mirrored.values() for v in accepted]
    revisions = [
        r
        for r in records
        if r["kind"] == "revision"
        and r["query_id"] in todo.mirrored
        and r["score"] is not None
        and r["score"] >= ACCEPT
        and "borrowed_from" not in r  # the donor's own text is a donor already
    ]
    return [d | {"request": d["prompt"]} for d in samples + revisions]


def borrow_failures(
    records: list[dict], todo: Plan, critic: Critic, params: BuildPrefsParams
) -> list[dict]:
    """`records` with each contrast the learner did not fail replaced by a failure it
    showed on another request this round, where the critic judges that one a failure on
    this request too: an elicited contrast that worked (`contrast_borrow`), or a response
    accepted on a request that asks for no contrast (`contrast_mirror`: `mirror_donors`).

    Asked for its refusal of a benign request, the base learner often answers instead
    (19 of 27 contrasts in balance-fp32's r1), so round 1, the round that teaches only
    declining, gets few pairs that teach answering. The donor is an elicited failure
    that worked (judged a failure on its own request, by the margin build_prefs asks),
    from the same bucket if one did, else from any of the request's suite; among those the
    closest in length to the request's best answer, so a pair still differs in kind, not
    length. The record keeps the text the learner gave (`elicited_response`) and names
    its donor.
    """
    best = {top[0]["query_id"]: most_concise(top) for top, _ in todo.to_contrast}

    def failed(record: dict, score: float | None) -> bool:
        return contrast_failed(best[record["query_id"]]["score"], score, params)

    contrasts = [r for r in records if r["kind"] == "contrast"]
    wanting = [r for r in contrasts if not failed(r, r["score"])]
    donors = [r for r in contrasts if failed(r, r["score"])] if params.contrast_borrow else []
    if params.contrast_mirror:
        donors += mirror_donors(records, todo)
    picks = {}
    for record in wanting:
        length = len(best[record["query_id"]]["response"])
        pick = closest_donor(record, donors, length)
        if pick is not None:
            picks[record["id"]] = pick
    return lend(
        records,
        picks,
        lambda r: best[r["query_id"]],
        critic,
        lambda r, verdict: failed(r, verdict["score"]),
        "elicited_response",
    )


def closest_donor(record: dict, donors: list[dict], length: int) -> dict | None:
    """The donor for `record`: of its suite, from its bucket if any is, the closest in
    length to `length` (so a pair differs in kind, not length); None: no donor."""
    same_suite = [d for d in donors if d.get("suite") == record.get("suite")]
    pool = [d for d in same_suite if d["bucket"] == record["bucket"]] or same_suite
    return min(pool, key=lambda d: (abs(len(d["response"]) - length), d["id"])) if pool else None


def lend(
    records: list[dict],
    picks: dict[str, dict],
    against: Callable[[dict], dict],
    critic: Critic,
    takes: Callable[[dict, dict], bool],
    kept_as: str,
) -> list[dict]:
    """`records` with each one in `picks` (by id) replaced by its donor's response where
    the critic, judging that response as the verdict `against(record)` is judged, gives a
    verdict `takes(record, verdict)` holds for. The record keeps its own text under
    `kept_as` and names its donor (`borrowed_from`)."""
    if not picks:
        return records
    taking = [r for r in records if r["id"] in picks]
    asked = [against(r) | {"response": picks[r["id"]]["response"]} for r in taking]
    judged = dict(zip([r["id"] for r in taking], critic.judge(asked), strict=True))
    out = []
    for record in records:
        verdict = judged.get(record["id"])
        if verdict is None or not takes(record, verdict):
            out.append(record)
            continue
        donor = picks[record["id"]]
        out.append(
            record
            | {
                "id": record_id(record["kind"], record["answers_for"], donor["response"]),
                "response": donor["response"],
                "request": donor["request"],
                "borrowed_from": donor["query_id"],
                kept_as: record["response"],
            }
            | verdict
        )
    return out


def revise_metrics(records: list[dict]) -> dict:
    metrics = {"items": len(records)}
    for kind in ("revision", "contrast"):
        scored = [r for r in records if r["kind"] == kind and r["score"] is not None]
        metrics[f"{kind}s"] = sum(r["kind"] == kind for r in records)
        metrics[f"{kind}s_accepted"] = sum(r["score"] >= ACCEPT for r in scored)
    for kind in ("revision", "contrast"):
        metrics[f"{kind}s_borrowed"] = sum(
            r["kind"] == kind and "borrowed_from" in r for r in records
        )
    metrics["revisions_copying_critique"] = sum(bool(r.get("copied_critique")) for r in records)
    metrics["human_labels"] = sum(r["source"] == "human" for r in records)
    return metrics


@stage_main(
    "revise",
    __doc__,
    option("--policy", required=True, help="the round whose policy revises (rK-1)"),
    option("--models", default="models", help="directory of round checkpoints"),
    option("--base", required=True, help="base checkpoint (default judge model)"),
    option("--verdicts", required=True),
    option("--labels", required=True, help="git-tracked expert labels (JSON Lines)"),
    option("--rubric", required=True, help="the suite's rubric (the critic judges revisions)"),
    option("--critique-metrics", help="the round's critique metrics (a judge's calibration)"),
    option("--out", required=True, help="revisions JSON Lines"),
    option("--queue", required=True, help="review queue of the revisions"),
    option("--metrics", required=True),
    logs=("build_prefs", "critique"),
)
def main(stage: Stage) -> None:
    args, params = stage.args, stage.params
    p: BuildPrefsParams = params["build_prefs"]
    verdicts = read_jsonl(args.verdicts, required=VERDICT)
    suite: Suite = load_suite(params["suite"])
    todo = plan(verdicts, p, suite)
    records: list[dict] = []
    if todo.to_revise or todo.to_contrast:
        model, tokenizer = load_policy(args.policy, args.models, params["rounds"])
        learner = Engine(model, tokenizer, params["engine"])
        critic = load_critic(params, suite, args.rubric, args.base, args.critique_metrics)
        records = revise(todo, learner, critic, p, suite)
    labels = load_labels(args.labels, stage.round, {r["id"] for r in records}, kind="revision")
    records = [with_label(r, labels.get(r["id"])) for r in records]
    write_jsonl(args.out, records)
    write_jsonl(args.queue, review_queue(records, params["critique"].review_budget))
    metrics = revise_metrics(records)
    stage.write_metrics(args.metrics, metrics)
    print(
        f"revise@{stage.round}: {metrics['revisions']} revisions "
        f"({metrics['revisions_accepted']} accepted), {metrics['contrasts']} contrasts"
    )


if __name__ == "__main__":
    main()
