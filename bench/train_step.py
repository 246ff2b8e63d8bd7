"""Training step time: LoRA DPO on CPU, two ways of running the same training.

`--compare malloc` (default): glibc's default malloc vs freed blocks kept for reuse.
`--compare reference`: reference log-probs computed at every step vs once up front
(what `train` does when there is more than one epoch).
`--compare attention`: `train.attention` sdpa (PyTorch's fused kernel) vs eager.
`--compare lm-head`: TRL's fused LM head scoring every position (its CPU default) vs only
the completion positions (`runtime.score_completions_only`, what `train` does).

Each variant runs in its own process (malloc settings are process-wide and cannot be
undone), trains a fresh adapter on the same pairs from the base model with the params.yaml
`train` settings, and reports seconds per optimizer step (all of `train`, set-up included)
and the share of system time.

    python bench/train_step.py                       # 32 pairs of data/rounds/r1/pairs.jsonl
    python bench/train_step.py --pairs PATH --count 64 --compare reference
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


VARIANTS = {
    "malloc": ("glibc default", "keep freed blocks"),
    "reference": ("reference every step", "reference precomputed"),
    "lm-head": ("every position scored", "completions scored"),
    "attention": ("sdpa", "eager"),
}


def child(pairs_path: str, count: int, variant: str) -> dict:
    import trl

    import stages.train as train_stage
    from stages.models import load_checkpoint
    from stages.params import load_params
    from stages.records import read_jsonl

    if variant == "glibc default":  # the bench's baseline: glibc as it comes
        train_stage.keep_freed_memory = lambda: False
    if variant == "every position scored":  # TRL's CPU default
        train_stage.score_completions_only = lambda: False
    if variant == "reference every step":
        config_init = trl.DPOConfig.__init__

        def inline_reference(self, *args, **kwargs):
            config_init(self, *args, **(kwargs | {"precompute_ref_log_probs": False}))

        trl.DPOConfig.__init__ = inline_reference
    pairs = read_jsonl(pairs_path)[:count]
    params = load_params(ROOT / "params.yaml")["train"]
    if variant in VARIANTS["attention"]:
        params = dataclasses.replace(params, attention=variant)
    model, tokenizer = load_checkpoint(ROOT / "models" / "r0")
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        metrics = train_stage.train(pairs, model, tokenizer, params, Path(out) / "adapter")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    system, user = after.ru_stime - before.ru_stime, after.ru_utime - before.ru_utime
    return {
        "variant": variant,
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
    parser.add_argument("--compare", choices=sorted(VARIANTS), default="malloc")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.pairs, args.count, args.child)))
        return
    if not Path(args.pairs).is_file():
        raise SystemExit(f"error: {args.pairs} not found: run `dvc repro` first or pass --pairs")
    results = []
    for variant in VARIANTS[args.compare]:
        cmd = [sys.executable, __file__, "--pairs", args.pairs, "--count", str(args.count)]
        out = subprocess.run(cmd + ["--child", variant], capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    speedup = results[0]["seconds_per_step"] / results[1]["seconds_per_step"]
    print(json.dumps({"runs": results, "speedup": round(speedup, 2)}, indent=2))


if __name__ == "__main__":
    main()
