"""Training step time: LoRA DPO on CPU with glibc's default malloc vs blocks kept for reuse.

Each variant runs in its own process (malloc settings are process-wide and cannot be
undone), trains a fresh adapter on the same pairs from the base model with the params.yaml
`train` settings, and reports seconds per optimizer step and the share of system time.

    python bench/train_step.py                       # 32 pairs of data/rounds/r1/pairs.jsonl
    python bench/train_step.py --pairs PATH --count 64
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(pairs_path: str, count: int, keep: bool) -> dict:
    import stages.train as train_stage
    from stages.models import load_checkpoint
    from stages.params import load_params
    from stages.records import read_jsonl

    if not keep:  # the bench's baseline: glibc as it comes
        train_stage.keep_freed_memory = lambda: False
    pairs = read_jsonl(pairs_path)[:count]
    params = load_params(ROOT / "params.yaml")["train"]
    model, tokenizer = load_checkpoint(ROOT / "models" / "r0")
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        metrics = train_stage.train(pairs, model, tokenizer, params, Path(out) / "adapter")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    system, user = after.ru_stime - before.ru_stime, after.ru_utime - before.ru_utime
    return {
        "malloc": "keep freed blocks" if keep else "glibc default",
        "pairs": len(pairs),
        "steps": metrics["steps"],
        "seconds_per_step": round(wall / max(1, metrics["steps"]), 2),
        "system_time_share": round(system / (system + user), 2),
        "loss_first": metrics["loss_first"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default=str(ROOT / "data/rounds/r1/pairs.jsonl"))
    parser.add_argument("--count", type=int, default=32, help="pairs to train on")
    parser.add_argument("--child", choices=["default", "keep"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.pairs, args.count, args.child == "keep")))
        return
    if not Path(args.pairs).is_file():
        raise SystemExit(f"error: {args.pairs} not found: run `dvc repro` first or pass --pairs")
    results = []
    for variant in ("default", "keep"):
        cmd = [sys.executable, __file__, "--pairs", args.pairs, "--count", str(args.count)]
        out = subprocess.run(cmd + ["--child", variant], capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    speedup = results[0]["seconds_per_step"] / results[1]["seconds_per_step"]
    print(json.dumps({"runs": results, "speedup": round(speedup, 2)}, indent=2))


if __name__ == "__main__":
    main()
