"""The same LLM judge, local and served, on the same items: time and verdict agreement.

    python bench/served_judge.py                      # models/r0 as judge, 48 items
    python bench/served_judge.py --items 96 --judge models/r0 --concurrency 8

It starts `transformers serve JUDGE` on 127.0.0.1 (a free port), judges the items once
in-process (the batched local engine) and once through the endpoint (`openai:...@...`,
a fresh request cache, so every request is really sent), and prints both times and how
often the two verdicts agree (same score, or both null). Items are round r1's sampled
answers when `dvc repro` has made them, else the suite's held-out prompts answered "I
don't know." Greedy decoding on both sides; agreement below 1.0 comes from the server's
own batching and numerics, or from options it ignores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def items(count: int) -> list[dict]:
    samples = ROOT / "data/rounds/r1/samples.jsonl"
    if samples.is_file():
        rows = [json.loads(line) for line in samples.read_text().splitlines()[:count]]
        return [{"prompt": r["prompt"], "response": r["response"]} for r in rows]
    rows = [
        json.loads(line) for line in (ROOT / "data/suite/heldout.jsonl").read_text().splitlines()
    ]
    return [{"prompt": r["prompt"], "response": "I don't know."} for r in rows[:count]]


def main() -> None:
    from served_model import ServedModel

    from stages.critics import make_critic
    from stages.engine import EngineParams
    from stages.params import CritiqueParams, ServedParams
    from stages.suites import load_suite

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", default="models/r0", help="a checkpoint directory")
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args()
    judge = (ROOT / args.judge).resolve()
    todo = items(args.items)
    suite = load_suite("open")
    rubric = suite.default_rubric()
    engine_params = EngineParams()

    local_params = CritiqueParams(kind="llm_judge", max_new_tokens=args.max_new_tokens)
    local = make_critic(local_params, suite, rubric, judge, engine_params)
    started = time.perf_counter()
    local_verdicts = local.judge(todo)
    local_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as scratch:
        server = ServedModel(judge, Path(scratch)).start()
        try:
            served_params = CritiqueParams(
                kind="llm_judge", judge_model=server.spec, max_new_tokens=args.max_new_tokens
            )
            serving = ServedParams(concurrency=args.concurrency, cache_dir=f"{scratch}/cache")
            served = make_critic(served_params, suite, rubric, judge, engine_params, None, serving)
            started = time.perf_counter()
            served_verdicts = served.judge(todo)
            served_s = time.perf_counter() - started
        finally:
            server.stop()

    same = sum(a["score"] == b["score"] for a, b in zip(local_verdicts, served_verdicts))
    nulls = [sum(v["score"] is None for v in vs) for vs in (local_verdicts, served_verdicts)]
    print(f"judge {args.judge}, {len(todo)} items, up to {args.max_new_tokens} new tokens")
    print(f"local  (in-process, batched):     {local_s:7.1f} s  {nulls[0]} null verdicts")
    print(
        f"served (transformers serve, {args.concurrency} in flight): {served_s:7.1f} s  "
        f"{nulls[1]} null verdicts"
    )
    print(f"verdict agreement (same score or both null): {same / len(todo):.2f}")
    texts = sum(a["critique"] == b["critique"] for a, b in zip(local_verdicts, served_verdicts))
    print(f"identical judge replies: {texts / len(todo):.2f}")


if __name__ == "__main__":
    main()
