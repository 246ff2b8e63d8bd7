"""Stage `evaluate`: greedy answers from a round's policy on named sets, scored.

Sets: the suite's held-out set, the round-1 attacks frozen as a benchmark, this round's
fresh attacks, and the suite's transfer sets (another source no stage draws from) if it
has any. An item is graded by the suite's ground truth where it has some
(gold, label); the others are graded by the round's critic (its acceptance rate is then
the accuracy). Per set: accuracy, per-bucket accuracy, the suite's own metrics (format
adherence, per-label rates), and the collapse signals, mean response length and
distinct-2, and the share of degenerate answers (text.degenerate). Per-item results feed the next round's attacker.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from .critics import load_critic
from .engine import Engine, SamplingParams
from .errors import SuperalignError
from .params import EvaluateParams
from .policy import load_policy
from .records import read_jsonl, write_jsonl
from .schema import QUERY, conversation
from .stage import Stage, option, stage_main
from .suites import load_suite
from .suites.base import Suite
from .text import degenerate_share, distinct_n
from .verdicts import Critic, accepted


def score(
    set_name: str,
    queries: list[dict],
    responses: list[str],
    suite: Suite,
    verdicts: list[dict | None] | None = None,
) -> tuple[list[dict], dict]:
    """Per-item results and the set's metrics; pure, so it is tested without a model.

    The suite's ground truth grades the items that have it; `verdicts` (one per item, from
    a critic, None where not judged) grade the rest.
    """
    results = []
    verdicts = verdicts or [None] * len(queries)
    for query, response, verdict in zip(queries, responses, verdicts, strict=True):
        truth = suite.grade(query, response)
        if truth is not None:
            correct, graded_by = truth.correct, "ground_truth"
        else:
            correct = accepted(verdict) if verdict else None
            graded_by = (verdict or {}).get("source")
        results.append(
            {
                "id": query["id"],
                "set": set_name,
                "prompt": query["prompt"],
                "bucket": query.get("bucket"),
                "gold": query.get("gold"),
                "label": query.get("label"),
                "response": response,
                "answer": truth.answer if truth else None,
                "correct": correct,
                "graded_by": graded_by,
            }
        )
    metrics = summarize(results, suite)
    by_suite: dict[str, list[dict]] = defaultdict(list)
    for query, result in zip(queries, results):
        by_suite[query.get("suite") or "-"].append(result)
    if len(by_suite) > 1:  # a mixture: each suite's own figures, e.g. the alignment tax
        metrics["suites"] = {name: summarize(rs, suite) for name, rs in sorted(by_suite.items())}
    return results, metrics


def summarize(results: list[dict], suite: Suite) -> dict:
    """A set's metrics from its per-item results."""
    responses = [r["response"] for r in results]
    graded = [r for r in results if r["correct"] is not None]
    metrics = {
        "items": len(results),
        "mean_length_chars": _mean([len(r) for r in responses]),
        "distinct_2": distinct_n(responses, 2),
        "degenerate": degenerate_share(responses),
    } | suite.set_metrics(results)
    if graded:
        by_bucket = defaultdict(list)
        for r in graded:
            by_bucket[r["bucket"] or "all"].append(r["correct"])
        metrics["accuracy"] = _mean(r["correct"] for r in graded)
        metrics["failure_rate"] = 1 - metrics["accuracy"]
        metrics["graded"] = len(graded)
        metrics["buckets"] = {b: _mean(v) for b, v in sorted(by_bucket.items())}
    return metrics


def evaluate(
    sets: dict[str, list[dict]],
    engine: Engine,
    params: EvaluateParams,
    suite: Suite,
    critic: Critic | None = None,
):
    """Generate greedily on every named set and score it: (results, metrics).

    Items without ground truth are graded by `critic` when one is given.
    """
    greedy = SamplingParams(max_new_tokens=params.max_new_tokens)
    sets = {name: (qs[: params.limit] if params.limit else qs) for name, qs in sets.items()}
    for name, queries in sets.items():
        if not queries:
            raise SuperalignError(f"evaluate: the set '{name}' is empty")
    # Sets overlap (in round 1 the benchmark *is* the fresh set): answer each prompt once.
    prompts = list(dict.fromkeys(q["prompt"] for qs in sets.values() for q in qs))
    generations = engine.generate([conversation(p) for p in prompts], greedy)
    answer = {p: t[0] for p, t in zip(prompts, generations.texts)}
    all_results, metrics = [], {}
    for name, queries in sets.items():
        responses = [answer[q["prompt"]] for q in queries]
        ungraded = [i for i, q in enumerate(queries) if not suite.has_ground_truth(q)]
        verdicts = None
        if critic and ungraded:
            judged = critic.judge([queries[i] | {"response": responses[i]} for i in ungraded])
            verdicts = [None] * len(queries)
            for i, v in zip(ungraded, judged):
                verdicts[i] = v
        results, metrics[name] = score(name, queries, responses, suite, verdicts)
        all_results += results
    metrics["tokens_per_s"] = generations.tokens_per_s
    return all_results, metrics


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def read_sets(specs: list[str]) -> dict[str, list[dict]]:
    sets = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            raise SuperalignError(f"evaluate: --set wants NAME=PATH, got '{spec}'")
        sets[name] = read_jsonl(path, required=QUERY)
    return sets


@stage_main(
    "evaluate",
    __doc__,
    option("--models", default="models", help="directory of round checkpoints"),
    option("--base", required=True, help="base checkpoint (the default judge model)"),
    option(
        "--set",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="an evaluation set (JSON Lines queries); repeatable",
    ),
    option("--transfer", help="the suite's transfer sets, evaluated as the set `transfer` if any"),
    option("--rubric", help="the suite's rubric, for grading items without ground truth"),
    option("--metrics", required=True, help="metrics JSON to write"),
    option("--results", required=True, help="per-item results JSON Lines to write"),
    logs=("evaluate", "engine"),
    dvc_name=lambda round_name: "baseline" if round_name == "r0" else f"evaluate@{round_name}",
)
def main(stage: Stage) -> None:
    args, params = stage.args, stage.params
    sets = read_sets(args.set)
    transfer = read_jsonl(args.transfer, required=QUERY) if args.transfer else []
    if transfer:  # a suite without transfer sets writes an empty file
        sets["transfer"] = transfer
    suite = load_suite(params["suite"])
    model, tokenizer = load_policy(stage.round, args.models, params["rounds"])
    engine = Engine(model, tokenizer, params["engine"])
    critic = None
    if args.rubric and not all(suite.has_ground_truth(q) for qs in sets.values() for q in qs):
        # Items without ground truth are graded by the LLM judge of `critique` (its model,
        # length and score mode: the only critique keys this stage depends on), whatever
        # critic the rounds train with: one grader makes campaigns with different critics
        # comparable, and switching the critic does not rerun the baseline.
        grader = dataclasses.replace(params["critique"], kind="llm_judge")
        critic = load_critic(params | {"critique": grader}, suite, args.rubric, args.base)
    results, metrics = evaluate(sets, engine, params["evaluate"], suite, critic)
    write_jsonl(args.results, results)
    stage.write_metrics(args.metrics, metrics)
    summary = ", ".join(
        f"{name} accuracy {m['accuracy']:.3f}"
        for name, m in metrics.items()
        if isinstance(m, dict) and "accuracy" in m
    )
    print(f"evaluate@{stage.round}: {summary}; {metrics['tokens_per_s']:.0f} tokens/s")


if __name__ == "__main__":
    main()
