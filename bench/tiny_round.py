"""The pipeline's own time per round: a campaign of the tiny random model through a real
`dvc repro`, then seconds per stage from its MLflow runs (bench/round_time.py's table).

    python bench/tiny_round.py                # one round, in a temporary workspace
    python bench/tiny_round.py --rounds 2 --dir /tmp/tiny-campaign   # kept afterwards

The tiny model (tests/tiny_model.py) generates a few tokens and trains in a fraction of a
second, so what is left is what every round of a real campaign pays on this machine
besides the model's work: process starts, imports, CUDA set-up on a GPU, model loading,
DVC's and MLflow's bookkeeping. `engine.dtype` is `auto`, as in a user's run, so on a GPU
this is also one round of the real stage code on CUDA (bench/gpu_check.sh).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]


def main() -> None:
    from round_time import print_table, stage_seconds
    from tiny_model import build_tiny_model
    from workspace import env, make_workspace

    from stages.params import load_params
    from stages.tracking import campaign_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="workspace parent, kept (default: temporary)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        parent = args.dir or Path(scratch)
        model = build_tiny_model(parent / "model")
        ws = make_workspace(parent / "ws", model, {"engine": {"dtype": "auto"}}, args.rounds)
        started = time.perf_counter()
        # stage output streams through, so a run stopped by a time limit still says how far
        # it got
        ws_env = env(ws)
        rc = subprocess.call([sys.executable, "-m", "dvc", "repro"], cwd=ws, env=ws_env)
        seconds = time.perf_counter() - started
        print(f"dvc repro: exit {rc}, {seconds:.1f} s for {args.rounds} round(s) and r0")
        os.environ["MLFLOW_TRACKING_URI"] = ws_env["MLFLOW_TRACKING_URI"]
        campaign = campaign_name(load_params(ws / "params.yaml")["tracking"].campaign)
        print_table(campaign, stage_seconds(campaign))
    raise SystemExit(rc)


if __name__ == "__main__":
    main()
