"""The pipeline's own time per round: a campaign of the tiny random model through a real
`dvc repro`, then seconds per stage from its MLflow runs (bench/round_time.py's table).

    python bench/tiny_round.py                # one round, in a temporary workspace
    python bench/tiny_round.py --rounds 2 --dir /tmp/tiny-campaign   # kept afterwards

The tiny model (tests/tiny_model.py) generates a few tokens and trains in a fraction of a
second, so what is left is what every round of a real campaign pays on this machine
besides the model's work: process starts, imports, CUDA set-up on a GPU, model loading,
DVC's and MLflow's bookkeeping. `engine.dtype` is `auto`, as in a user's run, so on a GPU
this is also one round of the real stage code on CUDA (bench/gpu_check.sh).

With --model the same runs a real campaign instead, with the project's params (and a
profile's, with --profile) and no tiny shrinking, then prints its rounds table:

    python bench/tiny_round.py --model embedded:smollm2-135m-instruct --profile safety \
        --rounds 3 --time-limit 400   # stops dvc repro there; the table shows how far it got

`-S section.key=value` (as `dvc exp run -S`, the value read as YAML) changes a param on
top of the profile, e.g. `-S engine.batch_size=256`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]


def main() -> None:
    from round_time import generation_speed, print_table, stage_runs, stage_seconds
    from tiny_model import build_tiny_model
    from workspace import copy_project, env, make_workspace, merge, repo_params, round_chain

    from pipeline.profiles import read_profile
    from stages.params import load_params
    from stages.tracking import campaign_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--dir", type=Path, help="workspace parent, kept (default: temporary)")
    parser.add_argument("--model", help="a learner.model value: a real campaign, not the tiny one")
    parser.add_argument("--profile", help="with --model: a profile in profiles/, e.g. safety")
    parser.add_argument("--time-limit", type=float, help="seconds, then dvc repro is stopped")
    parser.add_argument(
        "-S", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="a param"
    )
    args = parser.parse_args()
    if args.profile and not args.model:
        parser.error("--profile needs --model (the tiny campaign has its own params)")

    with tempfile.TemporaryDirectory() as scratch:
        parent = args.dir or Path(scratch)
        ws = parent / "ws"
        if args.model:
            profile = read_profile(args.profile, ROOT) if args.profile else {}
            changes = {"learner": {"model": args.model}, "rounds": round_chain(args.rounds)}
            changes["tracking"] = {"campaign": args.profile or "main"}
            changes = merge(changes, param_changes(args.sets))
            copy_project(ws, merge(merge(repo_params(), profile), changes))
        else:
            overrides = merge({"engine": {"dtype": "auto"}}, param_changes(args.sets))
            make_workspace(ws, build_tiny_model(parent / "model"), overrides, args.rounds)
        ws_env = env(ws)
        started = time.perf_counter()
        rc = repro(ws, ws_env, args.time_limit)
        seconds = time.perf_counter() - started
        print(f"dvc repro: exit {rc}, {seconds:.1f} s for {args.rounds} round(s) and r0")
        os.environ["MLFLOW_TRACKING_URI"] = ws_env["MLFLOW_TRACKING_URI"]
        campaign = campaign_name(load_params(ws / "params.yaml")["tracking"].campaign)
        runs = stage_runs(campaign)
        print_table(campaign, stage_seconds(runs), generation_speed(runs))
        if args.model:
            print_heldout(ws / "metrics")
    raise SystemExit(rc)


def param_changes(sets: list[str]) -> dict:
    """`section.key=value` settings as the nested dict params.yaml merges them from."""
    import yaml

    changes: dict = {}
    for spec in sets:
        key, sep, value = spec.partition("=")
        if not sep or not key:
            raise SystemExit(f"-S {spec!r}: expected section.key=value")
        *sections, name = key.split(".")
        node = changes
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = yaml.safe_load(value)
    return changes


def print_heldout(metrics_dir: Path) -> None:
    """Each evaluated round's held-out figures (every group of a mixture) and pairs."""
    from pipeline.rounds import evaluated_rounds
    from stages.report import rounds_table

    for row in rounds_table(metrics_dir, evaluated_rounds(metrics_dir)):
        shown = {k: v for k, v in row.items() if k.startswith("heldout") or k == "pairs"}
        print(
            row["round"],
            " ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                for k, v in shown.items()
                if v is not None
            ),
        )


def repro(ws: Path, ws_env: dict, time_limit: float | None) -> int:
    """`dvc repro` in the workspace; past the time limit its whole process group is
    stopped (a stage's own process too), exit 124 as `timeout` says it. Stage output
    streams through, so a stopped run still shows how far it got."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro"], cwd=ws, env=ws_env, start_new_session=True
    )
    try:
        return proc.wait(timeout=time_limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        print(f"dvc repro: stopped at the {time_limit:.0f} s time limit")
        return 124


if __name__ == "__main__":
    main()
