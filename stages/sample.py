"""Stage `sample`: the current learner answers each query K times (the raw material the
critic judges and preference pairs are built from)."""

from __future__ import annotations

from .engine import Engine, Generations, SamplingParams
from .errors import SuperalignError
from .policy import load_policy
from .records import read_jsonl, record_id, write_jsonl
from .schema import QUERY, conversation
from .stage import Stage, option, stage_main


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


@stage_main(
    "sample",
    __doc__,
    option("--policy", required=True, help="the round whose policy answers (rK-1)"),
    option("--models", default="models", help="directory of round checkpoints"),
    option("--queries", required=True),
    option("--out", required=True),
    option("--metrics", required=True),
    logs=("sample", "engine"),
)
def main(stage: Stage) -> None:
    args, params = stage.args, stage.params
    queries = read_jsonl(args.queries, required=QUERY)
    model, tokenizer = load_policy(args.policy, args.models, params["rounds"])
    engine = Engine(model, tokenizer, params["engine"])
    samples, gen = sample(queries, engine, params["sample"], args.policy)
    write_jsonl(args.out, samples)
    stage.write_metrics(
        args.metrics,
        {"samples": len(samples), "tokens_per_s": gen.tokens_per_s, "seconds": gen.seconds},
    )
    print(f"sample@{stage.round}: {len(samples)} responses, {gen.tokens_per_s:.0f} tokens/s")


if __name__ == "__main__":
    main()
