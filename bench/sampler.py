"""Sampling throughput: `engine.sampler` exact vs fast, as the `sample` stage samples.

Same model, same prompts, the `sample` section's K, temperature, top_p, token budget and
seed (params.yaml), the engine's batch size and dtype; each sampler runs `--repeat` times
in turn, so a machine that slows down part way through slows both.

    python bench/sampler.py                          # 96 prompts of data/suite/heldout.jsonl
    python bench/sampler.py --prompts 64 --repeat 3 --model models/r0

Needs `dvc repro prepare suite` (models/r0 and the suite's held-out set), or --model and
--queries naming others. The samples differ between the two (other random variates);
what the bench shows beside the speed is that they are alike: mean length and how many
distinct samples each prompt got.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages.engine import Engine  # noqa: E402
from stages.models import load_checkpoint  # noqa: E402
from stages.params import load_params  # noqa: E402
from stages.records import read_jsonl  # noqa: E402
from stages.schema import conversation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models/r0"))
    parser.add_argument("--queries", default=str(ROOT / "data/suite/heldout.jsonl"))
    parser.add_argument("--prompts", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    params = load_params(ROOT / "params.yaml")
    sampling = params["sample"]  # a SamplingParams: K, temperature, top_p, budget, seed
    queries = read_jsonl(args.queries)
    step = max(1, len(queries) // args.prompts)
    chats = [conversation(q["prompt"]) for q in queries[::step][: args.prompts]]
    model, tokenizer = load_checkpoint(args.model)
    engines = {
        name: Engine(model, tokenizer, dataclasses.replace(params["engine"], sampler=name))
        for name in ("exact", "fast")
    }
    engines["exact"].generate(chats[:4], dataclasses.replace(sampling, max_new_tokens=4))
    runs: dict[str, list] = {name: [] for name in engines}
    for _ in range(args.repeat):
        for name, engine in engines.items():
            runs[name].append(engine.generate(chats, sampling))
    result = {"prompts": len(chats), "samples_per_prompt": sampling.num_samples}
    for name, outs in runs.items():
        texts = outs[-1].texts
        result[name] = {
            "tokens_per_s_each_repeat": [round(o.tokens_per_s, 1) for o in outs],
            "mean_chars": round(
                sum(len(t) for ts in texts for t in ts) / len(texts) / len(texts[0]), 1
            ),
            "distinct_per_prompt": round(sum(len(set(ts)) for ts in texts) / len(texts), 2),
        }
    best = {name: max(o.tokens_per_s for o in outs) for name, outs in runs.items()}
    result["speedup"] = round(best["fast"] / best["exact"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
