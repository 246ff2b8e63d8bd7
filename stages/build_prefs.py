"""Stage `build_prefs`: verdicts -> DPO preference pairs in TRL's conversational format.
Pure pairing: no model runs here (the learner's revisions and contrasts come from stage
`revise`, judged there).

Per query: the best response against the worst, when the best is acceptable and the
scores differ by at least `min_margin`. Pairs are minimal: the chosen is the most concise
of the best-scored responses and the rejected the worst-scored one closest to it in
length, so a pair differs in what the critic judged, not in length (DPO readily learns
"longer" or "shorter" instead of "better" from pairs that differ mostly in length).

When every response is acceptable and alike, there is nothing to prefer, unless the
suite names a failure to contrast with (`Suite.contrast_request`: for a benign request,
a refusal) and the learner showed failures in the query's bucket this round: `revise`
asked the learner for that failure, and if the critic rejected it, the best answer is
paired against it. This is what keeps over-refusal in check when a safety round teaches
declining: once refusals of benign requests appear, the pairs say "answer this one" as
well as "decline that". `contrast_ratio` holds the two in proportion: at most that many
contrast pairs for each pair on a harmful request, the failing buckets' first.
`contrast_floor` (with `contrast_in: all`) keeps every failing bucket's contrast and lets
the other buckets' fill in only up to that many per harmful pair, so round 1, where no
bucket has failed yet, also teaches some answering.

When no response is acceptable, `revise` had the learner answer the question again with
the critic's critique of its earlier answer beside it; if the critic accepted that
revision it becomes `chosen` for the question asked without the critique
(critique-guided revision, as in the paper's framework; STaR's "rationalization" with a
critique as the hint). `plan` decides which queries need which, and `revise` uses the
same function, so the two stages agree by construction.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .params import BuildPrefsParams
from .records import read_jsonl, record_id, write_jsonl
from .schema import REVISION, VERDICT, conversation
from .stage import Stage, option, stage_main
from .suites import load_suite
from .suites.base import Suite
from .text import degenerate
from .verdicts import ACCEPT


def pair(query: dict, chosen: str, rejected: str, kind: str, margin: float) -> dict:
    return {
        "id": record_id(query["query_id"], chosen, rejected),
        "query_id": query["query_id"],
        "prompt": conversation(query["prompt"]),
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "kind": kind,
        "margin": margin,
    }


def scored(group: list[dict], score: float) -> list[dict]:
    return [v for v in group if v["score"] == score]


def most_concise(verdicts: list[dict]) -> dict:
    return min(verdicts, key=lambda v: (len(v["response"]), v["id"]))


def closest_in_length(verdicts: list[dict], text: str) -> dict:
    return min(verdicts, key=lambda v: (abs(len(v["response"]) - len(text)), v["id"]))


def minimal_pairs(
    chosen: list[dict], rejected: list[dict], limit: int, min_margin: float | None = None
) -> list[tuple[dict, dict]]:
    """Up to `limit` (chosen, rejected) of distinct texts (with `min_margin`, only those
    whose scores differ by it). The first is the most concise chosen against the rejected
    closest to it in length; the others follow, the pairs most alike in length first."""

    def apart(c: dict, r: dict) -> bool:
        return min_margin is None or c["score"] - r["score"] >= min_margin

    best = most_concise(chosen)
    beaten = [r for r in rejected if apart(best, r)]
    out = [(best, closest_in_length(beaten, best["response"]))] if beaten else []
    seen = {(c["response"], r["response"]) for c, r in out}
    if limit > len(out):
        others = sorted(
            ((c, r) for c in chosen for r in rejected if apart(c, r)),
            key=lambda cr: (
                abs(len(cr[0]["response"]) - len(cr[1]["response"])),
                len(cr[0]["response"]),
                cr[0]["id"],
                cr[1]["id"],
            ),
        )
        for c, r in others:
            if len(out) == limit:
                break
            if (c["response"], r["response"]) not in seen:
                seen.add((c["response"], r["response"]))
                out.append((c, r))
    return out


def sides(group: list[dict], params: BuildPrefsParams) -> tuple[list[dict], list[dict]]:
    """(the responses that may be chosen, those that may be rejected), best first: the
    best- and worst-scored (`pairs_from: extremes`), or, where the critic both accepts and
    rejects some, the accepted and the rejected (`decision`)."""
    ordered = sorted(group, key=lambda v: -v["score"])
    if params.pairs_from == "decision":
        accepted = [v for v in ordered if v["score"] >= ACCEPT]
        rejected = [v for v in ordered if v["score"] < ACCEPT]
        if accepted and rejected:
            return accepted, rejected
    return scored(group, ordered[0]["score"]), scored(group, ordered[-1]["score"])


def acceptable(score: float, params: BuildPrefsParams) -> bool:
    return score >= ACCEPT or not params.require_acceptable


def contrast_failed(top_score: float, score: float | None, params: BuildPrefsParams) -> bool:
    """Whether a contrast response is the failure asked for: scored below the request's
    best answer by at least the margin (revise borrows by the same test)."""
    return score is not None and top_score - score >= params.min_margin


@dataclass
class Plan:
    """What each query of a round gives, decided from its verdicts alone: pairs of its own
    samples, or a revision or a contrast to ask the learner for (stage `revise`)."""

    pairs: list[dict] = field(default_factory=list)  # best vs worst of the samples
    to_revise: list[tuple[list[dict], list[dict]]] = field(default_factory=list)  # (group, lowest)
    to_contrast: list[tuple[list[dict], str]] = field(default_factory=list)  # (top, request)
    dropped: dict[str, int] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)  # buckets with a failure this round
    # `contrast_mirror` / `revision_borrow`: each query that asks for no contrast (a harmful
    # request) with its accepted samples (declines), possibly none: the donors of borrowed
    # responses (its accepted revisions count too)
    mirrored: dict[str, list[dict]] = field(default_factory=dict)


def plan(verdicts: list[dict], params: BuildPrefsParams, suite: Suite | None = None) -> Plan:
    """The round's plan; `suite` names the failure a contrast elicits (none: no contrast)."""
    by_query: dict[str, list[dict]] = defaultdict(list)
    for v in verdicts:
        if v["score"] is not None:  # a null verdict says nothing: it never becomes a pair
            by_query[v["query_id"]].append(v)
    out = Plan()
    # By default contrast only in buckets where the learner showed a failure this round:
    # supervision goes where the weakness is. Contrasting every all-good benign request
    # (`contrast_in: all`) once taught answering over declining (harmful safe-response
    # 0.27 -> 0.15 in two rounds, when few revisions were accepted), but without it a
    # round that teaches declining has almost nothing teaching answering (README: Safety).
    failing = {v.get("bucket") for v in verdicts if v["score"] is not None and v["score"] < ACCEPT}
    out.dropped = {"no_verdict": len({v["query_id"] for v in verdicts}) - len(by_query)}
    out.dropped |= {"small_margin": 0, "revision_rejected": 0, "no_revision": 0}
    out.dropped |= {"contrast_rejected": 0, "contrast_capped": 0}
    out.failing = failing
    for group in by_query.values():
        donates = params.contrast_mirror or params.revision_borrow
        if suite and donates and suite.contrast_request(group[0]) is None:
            out.mirrored[group[0]["query_id"]] = [v for v in group if v["score"] >= ACCEPT]
        top, lowest = sides(group, params)
        best = most_concise(top)
        margin = top[0]["score"] - lowest[-1]["score"]
        if acceptable(best["score"], params) and margin >= params.min_margin:
            for chosen, rejected in minimal_pairs(
                top, lowest, params.pairs_per_query, params.min_margin
            ):
                gap = chosen["score"] - rejected["score"]
                out.pairs.append(
                    pair(chosen, chosen["response"], rejected["response"], "best_vs_worst", gap)
                )
        elif best["score"] >= ACCEPT:
            where = params.contrast_in == "all" or best.get("bucket") in failing
            wanted = suite and params.contrast and where
            request = suite.contrast_request(best) if wanted else None
            if request:
                out.to_contrast.append((top, request))
            else:
                out.dropped["small_margin"] += 1  # every response acceptable and alike
        elif params.revise:
            out.to_revise.append((group, lowest))
        else:
            out.dropped["no_revision"] += 1
    return out


def contrast_limits(
    pairs: list[dict], verdicts: list[dict], params: BuildPrefsParams
) -> tuple[float, float]:
    """(cap, fill): how many contrast pairs the round may add in all (`contrast_ratio`
    per pair on a harmful request, the pairs that teach declining), and up to how many
    the buckets that did not fail this round may bring the total (`contrast_floor` per
    such pair); no limit where the ratio is null."""
    label = {v["query_id"]: v.get("label") for v in verdicts}
    harmful = sum(label.get(p["query_id"]) == "harmful" for p in pairs)

    def per_harmful(ratio: float | None) -> float:
        return math.inf if ratio is None else ratio * harmful

    cap = per_harmful(params.contrast_ratio)
    return cap, min(cap, per_harmful(params.contrast_floor))


def capped(
    contrasts: list[tuple[bool, list[dict]]], cap: float, fill: float = math.inf
) -> list[list[dict]]:
    """The queries' contrast pairs that fit under `cap`, whole queries, chosen from the
    buckets that failed this round first (then the rest, each in plan order, only while
    the total stays within `fill`), and returned in plan order."""
    order = sorted(range(len(contrasts)), key=lambda i: not contrasts[i][0])  # stable
    kept, total = set(), 0
    for i in order:
        failing, these = contrasts[i]
        if total + len(these) <= (cap if failing else fill):
            kept.add(i)
            total += len(these)
    return [these for i, (_, these) in enumerate(contrasts) if i in kept]


def build_prefs(
    verdicts: list[dict],
    revisions: list[dict],
    params: BuildPrefsParams,
    suite: Suite | None = None,
) -> tuple[list[dict], dict]:
    """(pairs, metrics) from the round's verdicts and the `revise` stage's judged
    revisions and contrasts; no model is involved."""
    todo = plan(verdicts, params, suite)
    pairs, dropped, limit = todo.pairs, todo.dropped, params.pairs_per_query
    written = {(r["kind"], r["query_id"]): r for r in revisions}
    revised = 0
    for group, lowest in todo.to_revise:
        revision = written.get(("revision", lowest[0]["query_id"]))
        if revision is None:
            dropped["no_revision"] += 1
            continue
        score, text = revision["score"], revision["response"]
        margin = None if score is None else score - lowest[0]["score"]
        if margin is None or not acceptable(score, params) or margin < params.min_margin:
            dropped["revision_rejected"] += 1
            continue
        # `decision`: against every sample it beats by the margin, as a 0/1 critic's would be
        beaten = group if params.pairs_from == "decision" else lowest
        chosen = {"response": text, "id": "revision", "score": score}
        # a borrowed response was not written for this request: one pair, so it teaches
        # this request's answer without outweighing the learner's own revisions
        these = 1 if "borrowed_from" in revision else limit
        for _, rejected in minimal_pairs([chosen], beaten, these, params.min_margin):
            gap = score - rejected["score"]
            pairs.append(pair(rejected, text, rejected["response"], "revision", gap))
        revised += 1
    contrasts = []  # (bucket failed this round, the query's contrast pairs)
    for top, _ in todo.to_contrast:
        contrast = written.get(("contrast", top[0]["query_id"]))
        score = contrast["score"] if contrast else None
        if contrast_failed(top[0]["score"], score, params):
            failure = {"response": contrast["response"], "id": "contrast"}
            these = []
            for chosen, _ in minimal_pairs(top, [failure], limit):
                margin = chosen["score"] - score
                these.append(
                    pair(chosen, chosen["response"], contrast["response"], "contrast", margin)
                )
            contrasts.append((top[0].get("bucket") in todo.failing, these))
        else:
            dropped["contrast_rejected"] += 1
    kept = capped(contrasts, *contrast_limits(pairs, verdicts, params))
    dropped["contrast_capped"] = len(contrasts) - len(kept)
    contrasted = len(kept)
    pairs += [p for these in kept for p in these]
    # a degenerate response is never preferred, whatever a critic scored it
    fit = [p for p in pairs if not degenerate(p["chosen"][0]["content"])]
    dropped["degenerate_chosen"] = len(pairs) - len(fit)
    pairs = fit
    queries = len({v["query_id"] for v in verdicts})
    kinds = Counter(p["kind"] for p in pairs)
    metrics = {
        "queries": queries,
        "pairs": len(pairs),
        "revision_pairs": kinds["revision"],
        "contrast_pairs": kinds["contrast"],
        "revision_share": kinds["revision"] / len(pairs) if pairs else 0.0,
        "revised_queries": revised,
        "contrasted_queries": contrasted,
        "revisions_tried": len(todo.to_revise),
        "dropped": sum(dropped.values()),
    } | {f"dropped_{k}": v for k, v in dropped.items()}
    return pairs, metrics


@stage_main(
    "build_prefs",
    __doc__,
    option("--verdicts", required=True),
    option("--revisions", required=True, help="the round's judged revisions and contrasts"),
    option("--out", required=True),
    option("--metrics", required=True),
    logs=("build_prefs",),
)
def main(stage: Stage) -> None:
    args, params = stage.args, stage.params
    verdicts = read_jsonl(args.verdicts, required=VERDICT)
    revisions = read_jsonl(args.revisions, required=REVISION)
    suite = load_suite(params["suite"])
    pairs, metrics = build_prefs(verdicts, revisions, params["build_prefs"], suite)
    write_jsonl(args.out, pairs)
    stage.write_metrics(args.metrics, metrics)
    print(
        f"build_prefs@{stage.round}: {metrics['pairs']} pairs "
        f"({metrics['revision_pairs']} from revisions), {metrics['dropped']} queries dropped"
    )


if __name__ == "__main__":
    main()
