"""Stage `build_prefs`: verdicts -> DPO preference pairs in TRL's conversational format.

Per query: the best response against the worst, when the best is acceptable and the
scores differ by at least `min_margin`. Pairs are minimal: the chosen is the most concise
of the best-scored responses and the rejected the worst-scored one closest to it in
length, so a pair differs in what the critic judged, not in length (DPO readily learns
"longer" or "shorter" instead of "better" from pairs that differ mostly in length).

When every response is acceptable and alike, there is nothing to prefer, unless the
suite names a failure to contrast with (`Suite.contrast_request`: for a benign request,
a refusal) and the learner showed failures in the query's bucket this round: the learner
is asked for that failure, and if the critic rejects it, the best answer is paired
against it. This is what keeps over-refusal in check when a safety round teaches
declining: once refusals of benign requests appear, the pairs say "answer this one" as
well as "decline that".

When no response is acceptable, the learner answers the question again with the critic's
critique of its earlier answer beside it; if the critic accepts that revision it becomes
`chosen` for the question asked without the critique (critique-guided revision, as in the
paper's framework; STaR's "rationalization" with a critique as the hint).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from .critics import load_critic
from .engine import Engine, SamplingParams
from .params import BuildPrefsParams
from .policy import load_policy
from .records import read_jsonl, record_id, write_jsonl
from .schema import VERDICT, conversation
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


def revision_chat(verdict: dict) -> list[dict]:
    request = REVISION_REQUEST.format(prompt=verdict["prompt"], critique=verdict["critique"])
    return conversation(request)


def scored(group: list[dict], score: float) -> list[dict]:
    return [v for v in group if v["score"] == score]


def most_concise(verdicts: list[dict]) -> dict:
    return min(verdicts, key=lambda v: (len(v["response"]), v["id"]))


def closest_in_length(verdicts: list[dict], text: str) -> dict:
    return min(verdicts, key=lambda v: (abs(len(v["response"]) - len(text)), v["id"]))


def minimal_pairs(chosen: list[dict], rejected: list[dict], limit: int) -> list[tuple[dict, dict]]:
    """Up to `limit` (chosen, rejected) of distinct texts. The first is the most concise
    chosen against the rejected closest to it in length; the others follow, the pairs
    most alike in length first."""
    best = most_concise(chosen)
    out = [(best, closest_in_length(rejected, best["response"]))]
    seen = {(best["response"], out[0][1]["response"])}
    if limit > 1:
        others = sorted(
            ((c, r) for c in chosen for r in rejected),
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


def acceptable(score: float, params: BuildPrefsParams) -> bool:
    return score >= ACCEPT or not params.require_acceptable


def build_prefs(
    verdicts: list[dict],
    params: BuildPrefsParams,
    learner: Engine | None,
    critic: Critic | None,
    suite: Suite | None = None,
) -> tuple[list[dict], dict]:
    """(pairs, metrics). `learner` and `critic` are needed only when revising or
    contrasting; `suite` says which failure to elicit for a contrast."""
    by_query: dict[str, list[dict]] = defaultdict(list)
    for v in verdicts:
        if v["score"] is not None:  # a null verdict says nothing: it never becomes a pair
            by_query[v["query_id"]].append(v)
    pairs, to_revise, to_contrast = [], [], []
    # Contrast only in buckets where the learner showed a failure this round: supervision
    # goes where the weakness is. Contrasting every all-good benign request from the start
    # taught answering over declining (safety campaign, README: harmful safe-response
    # 0.27 -> 0.15 in two rounds while benign stayed at 1.00).
    failing = {v.get("bucket") for v in verdicts if v["score"] is not None and v["score"] < ACCEPT}
    dropped = {"no_verdict": len({v["query_id"] for v in verdicts}) - len(by_query)}
    dropped |= {"small_margin": 0, "revision_rejected": 0, "no_revision": 0}
    dropped |= {"contrast_rejected": 0}
    limit = params.pairs_per_query
    for group in by_query.values():
        top = scored(group, max(v["score"] for v in group))
        best = most_concise(top)
        lowest = scored(group, min(v["score"] for v in group))
        margin = best["score"] - lowest[0]["score"]
        if acceptable(best["score"], params) and margin >= params.min_margin:
            for chosen, rejected in minimal_pairs(top, lowest, limit):
                pairs.append(
                    pair(chosen, chosen["response"], rejected["response"], "best_vs_worst", margin)
                )
        elif best["score"] >= ACCEPT:
            wanted = suite and params.contrast and best.get("bucket") in failing
            request = suite.contrast_request(best) if wanted else None
            if request and learner is not None:
                to_contrast.append((top, request))
            else:
                dropped["small_margin"] += 1  # every response acceptable and alike: no signal
        elif params.revise and learner is not None:
            to_revise.append((group, lowest))
        else:
            dropped["no_revision"] += 1
    revised = 0
    if to_revise:
        sampling = SamplingParams(max_new_tokens=params.max_new_tokens)
        # Each query's most concise failure carries the critique the learner revises from.
        shown = [most_concise(group) for group, _ in to_revise]
        texts = [t[0] for t in learner.generate([revision_chat(v) for v in shown], sampling).texts]
        judged = critic.judge([v | {"response": t} for v, t in zip(shown, texts)])
        for (_, lowest), text, verdict in zip(to_revise, texts, judged):
            score = verdict["score"]
            margin = score - lowest[0]["score"] if score is not None else 0.0
            if score is not None and acceptable(score, params) and margin >= params.min_margin:
                revision = {"response": text, "id": "revision"}
                for _, rejected in minimal_pairs([revision], lowest, limit):
                    pairs.append(pair(rejected, text, rejected["response"], "revision", margin))
                revised += 1
            else:
                dropped["revision_rejected"] += 1
    contrasted = 0
    if to_contrast:
        # The learner's own version of the failure the suite names (for a benign request:
        # a refusal), judged like any response: a pair only when the critic agrees it fails.
        sampling = SamplingParams(max_new_tokens=params.max_new_tokens)
        chats = [conversation(request) for _, request in to_contrast]
        texts = [t[0] for t in learner.generate(chats, sampling).texts]
        shown = [most_concise(top) for top, _ in to_contrast]
        judged = critic.judge([best | {"response": t} for best, t in zip(shown, texts)])
        for (top, _), text, verdict in zip(to_contrast, texts, judged):
            score = verdict["score"]
            if score is not None and top[0]["score"] - score >= params.min_margin:
                failure = {"response": text, "id": "contrast"}
                for chosen, _ in minimal_pairs(top, [failure], limit):
                    margin = chosen["score"] - score
                    pairs.append(pair(chosen, chosen["response"], text, "contrast", margin))
                contrasted += 1
            else:
                dropped["contrast_rejected"] += 1
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
        "revisions_tried": len(to_revise),
        "dropped": sum(dropped.values()),
    } | {f"dropped_{k}": v for k, v in dropped.items()}
    return pairs, metrics


@stage_main(
    "build_prefs",
    __doc__,
    option("--policy", required=True, help="the round whose policy revises (rK-1)"),
    option("--models", default="models"),
    option("--verdicts", required=True),
    option("--rubric", required=True, help="the suite's rubric (the critic judges revisions)"),
    option("--critique-metrics", help="the round's critique metrics (a judge's calibration)"),
    option("--out", required=True),
    option("--metrics", required=True),
    logs=("build_prefs", "critique"),
)
def main(stage: Stage) -> None:
    args, params = stage.args, stage.params
    p: BuildPrefsParams = params["build_prefs"]
    verdicts = read_jsonl(args.verdicts, required=VERDICT)
    suite = load_suite(params["suite"])
    learner = critic = None
    if p.revise or p.contrast:
        model, tokenizer = load_policy(args.policy, args.models, params["rounds"])
        learner = Engine(model, tokenizer, params["engine"])
        critic = load_critic(
            params, suite, args.rubric, Path(args.models) / "r0", args.critique_metrics
        )
    pairs, metrics = build_prefs(verdicts, p, learner, critic, suite)
    write_jsonl(args.out, pairs)
    stage.write_metrics(args.metrics, metrics)
    print(
        f"build_prefs@{stage.round}: {metrics['pairs']} pairs "
        f"({metrics['revision_pairs']} from revisions), {metrics['dropped']} queries dropped"
    )


if __name__ == "__main__":
    main()
