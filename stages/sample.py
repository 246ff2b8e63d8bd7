"""Stage `sample`: the current learner answers each query K times (the raw material the
critic judges and preference pairs are built from)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from .engine import Engine, Generations, SamplingParams
from .errors import SuperalignError, one_line_errors
from .params import DEFAULT_PARAMS, load_params
from .policy import load_policy
from .records import read_jsonl, record_id, write_jsonl
from .schema import QUERY, conversation
from .tracking import campaign_name, stage_run


@dataclass(frozen=True)
class SampleParams(SamplingParams):
    """K diverse responses per query: sampling, not greedy, so the critic sees contrasts."""

    num_samples: int = 4
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 48


def sample(queries: list[dict], engine: Engine, params: SamplingParams, policy: str):
    """K sample records per query (input order kept) and the engine's measurements."""
    if not queries:
        raise SuperalignError("sample: no queries to answer")
    generations: Generations = engine.generate([conversation(q["prompt"]) for q in queries], params)
    samples = []
    for query, responses in zip(queries, generations.texts):
        for index, response in enumerate(responses):
            extras = {k: v for k, v in query.items() if k not in ("id",)}
            samples.append(
                extras
                | {
                    "id": record_id(query["id"], policy, index, response),
                    "query_id": query["id"],
                    "response": response,
                    "sample_index": index,
                    "policy": policy,
                }
            )
    return samples, generations


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round", required=True, help="the round being sampled for (rK)")
    parser.add_argument("--policy", required=True, help="the round whose policy answers (rK-1)")
    parser.add_argument("--models", default="models", help="directory of round checkpoints")
    parser.add_argument("--queries", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--params", default=DEFAULT_PARAMS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    queries = read_jsonl(args.queries, required=QUERY)
    with stage_run("sample", args.round, campaign_name(params["tracking"].campaign)) as run:
        run.log_params({"sample": params["sample"], "engine": params["engine"]})
        model, tokenizer = load_policy(args.policy, args.models, params["rounds"])
        engine = Engine(model, tokenizer, params["engine"])
        samples, gen = sample(queries, engine, params["sample"], args.policy)
        write_jsonl(args.out, samples)
        run.log_metrics(
            {"samples": len(samples), "tokens_per_s": gen.tokens_per_s, "seconds": gen.seconds}
        )
    print(f"sample@{args.round}: {len(samples)} responses, {gen.tokens_per_s:.0f} tokens/s")


if __name__ == "__main__":
    main()
