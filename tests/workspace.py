"""A throwaway copy of the project (git + DVC initialised) with a tiny-model params profile."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COPIED = ["dvc.yaml", "params.yaml", "stages", "pipeline", "data"]
SKIPPED = shutil.ignore_patterns("__pycache__", "rounds")


def tiny_profile(model_dir: Path, rounds: int = 0) -> dict:
    """Overrides that make every stage take seconds on the tiny random model.

    A random model answers nothing right, so the tiny profile's critic is the noisy
    verifier at flip rate 0.5: some answers are accepted and preference pairs exist.
    """
    profile = {
        "learner": {"model": str(model_dir)},
        "engine": {"dtype": "float32", "batch_size": 32},
        "attack": {"queries": 8},
        "sample": {"num_samples": 3, "max_new_tokens": 6},
        "critique": {"kind": "noisy", "flip_rate": 0.5, "review_budget": 3},
        "build_prefs": {"max_new_tokens": 6},
        "train": {"batch_size": 4, "lora_r": 4, "lora_alpha": 8, "max_length": 96},
        "evaluate": {"limit": 6, "max_new_tokens": 6},
        "rounds": round_chain(rounds),
    }
    return profile


def round_chain(rounds: int) -> dict:
    """params.yaml's `rounds`: r1 .. rN, each naming its predecessor."""
    return {f"r{k}": {"prev": f"r{k - 1}"} for k in range(1, rounds + 1)}


def merge(base: dict, overrides: dict) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = (
            merge(base.get(key) or {}, value)
            if isinstance(value, dict) and key != "rounds"
            else value
        )
    return out


def make_workspace(
    dest: Path, model_dir: Path, overrides: dict | None = None, rounds: int = 0
) -> Path:
    params = merge(repo_params(), tiny_profile(model_dir, rounds))
    return copy_project(dest, merge(params, overrides or {}))


def repo_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def copy_project(dest: Path, params: dict) -> Path:
    """The project's code, DAG and data in `dest` with these params, git and DVC set up."""
    dest.mkdir(parents=True)
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=SKIPPED)
        else:
            shutil.copy2(src, dest / name)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q", "-b", "main"], dest)
    run([sys.executable, "-m", "dvc", "init", "-q"], dest)
    return dest


def env(dest: Path) -> dict:
    # Stage commands say `python`: make it this interpreter, and keep MLflow in the copy.
    return os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{dest / 'mlflow.db'}",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(cwd), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(dest: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], dest, check=check)
