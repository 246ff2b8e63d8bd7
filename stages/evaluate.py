"""Stage `evaluate`: greedy answers from a round's policy on named sets, scored.

Sets: the fixed held-out set, the round-1 attacks frozen as a benchmark, and this round's
fresh attacks. Accuracy is by gold where there is gold; where there is none (open-ended
suites) the round's critic grades the answers and accuracy is its acceptance rate.
Also: format adherence (an answer could be parsed), and the collapse signals, mean
response length and distinct-2. Per-item results feed the next round's attacker.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .arithmetic import extract_answer
from .critics import Critic, accepted
from .critique import load_critic
from .engine import Engine, SamplingParams
from .errors import SuperalignError, one_line_errors
from .params import DEFAULT_PARAMS, load_params
from .policy import load_policy
from .records import read_jsonl, write_json, write_jsonl
from .round_metrics import flat
from .schema import QUERY, conversation
from .text import distinct_n
from .tracking import campaign_name, stage_run


@dataclass(frozen=True)
class EvaluateParams:
    """Greedy decoding on every evaluation set."""

    max_new_tokens: int = 48
    limit: int | None = None  # score only the first N items of each set (quick profiles)

    def __post_init__(self):
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 or null, got {self.limit}")


def score(
    set_name: str, queries: list[dict], responses: list[str], verdicts: list[dict] | None = None
) -> tuple[list[dict], dict]:
    """Per-item results and the set's metrics; pure, so it is tested without a model.

    `verdicts` (one per item, from a critic) grade the items that have no gold.
    """
    results, by_bucket = [], defaultdict(list)
    verdicts = verdicts or [None] * len(queries)
    for query, response, verdict in zip(queries, responses, verdicts, strict=True):
        answer = extract_answer(response)
        gold = query.get("gold")
        if gold is not None:
            correct = answer == gold
        else:
            correct = accepted(verdict) if verdict else None
        results.append(
            {
                "id": query["id"],
                "set": set_name,
                "prompt": query["prompt"],
                "bucket": query.get("bucket"),
                "gold": gold,
                "response": response,
                "answer": answer,
                "correct": correct,
                "graded_by": "gold" if gold is not None else (verdict or {}).get("source"),
            }
        )
        if correct is not None:
            by_bucket[query.get("bucket") or "all"].append(correct)
    graded = [r["correct"] for r in results if r["correct"] is not None]
    metrics = {
        "items": len(results),
        "format_adherence": _mean([r["answer"] is not None for r in results]),
        "mean_length_chars": _mean([len(r) for r in responses]),
        "distinct_2": distinct_n(responses, 2),
    }
    if graded:
        metrics["accuracy"] = _mean(graded)
        metrics["failure_rate"] = 1 - metrics["accuracy"]
        metrics["graded"] = len(graded)
        metrics["buckets"] = {b: _mean(v) for b, v in sorted(by_bucket.items())}
    return results, metrics


def evaluate(
    sets: dict[str, list[dict]],
    engine: Engine,
    params: EvaluateParams,
    critic: Critic | None = None,
):
    """Generate greedily on every named set and score it: (results, metrics).

    Items without gold are graded by `critic` when one is given.
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
        ungraded = [i for i, q in enumerate(queries) if q.get("gold") is None]
        verdicts = None
        if critic and ungraded:
            judged = critic.judge([queries[i] | {"response": responses[i]} for i in ungraded])
            verdicts = [None] * len(queries)
            for i, v in zip(ungraded, judged):
                verdicts[i] = v
        results, metrics[name] = score(name, queries, responses, verdicts)
        all_results += results
    metrics["tokens_per_s"] = generations.tokens_per_s
    return all_results, metrics


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round", required=True, help="the round whose policy is evaluated")
    parser.add_argument("--models", default="models", help="directory of round checkpoints")
    parser.add_argument(
        "--set",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="an evaluation set (JSON Lines queries); repeatable",
    )
    parser.add_argument("--constitution", help="rubric for grading sets without gold")
    parser.add_argument("--metrics", required=True, help="metrics JSON to write")
    parser.add_argument("--results", required=True, help="per-item results JSON Lines to write")
    parser.add_argument("--params", default=DEFAULT_PARAMS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    sets = {}
    for spec in args.set:
        name, sep, path = spec.partition("=")
        if not sep:
            raise SuperalignError(f"evaluate: --set wants NAME=PATH, got '{spec}'")
        sets[name] = read_jsonl(path, required=QUERY)
    with stage_run("evaluate", args.round, campaign_name(params["tracking"].campaign)) as run:
        run.log_params({"evaluate": params["evaluate"], "engine": params["engine"]})
        model, tokenizer = load_policy(args.round, args.models, params["rounds"])
        engine = Engine(model, tokenizer, params["engine"])
        critic = None
        if args.constitution and any(q.get("gold") is None for qs in sets.values() for q in qs):
            critic = load_critic(params, args.constitution, Path(args.models) / "r0")
        results, metrics = evaluate(sets, engine, params["evaluate"], critic)
        write_jsonl(args.results, results)
        write_json(args.metrics, metrics)
        run.log_metrics(flat(metrics), on_campaign=True)
    summary = ", ".join(
        f"{name} accuracy {m['accuracy']:.3f}"
        for name, m in metrics.items()
        if isinstance(m, dict) and "accuracy" in m
    )
    print(f"evaluate@{args.round}: {summary}; {metrics['tokens_per_s']:.0f} tokens/s")


if __name__ == "__main__":
    main()
