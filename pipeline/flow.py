"""The Prefect flow: the DAG dvc.yaml defines, one task per stage per round.

Prefect does not define a second pipeline. The flow asks DVC for its stages in
dependency order and runs `dvc repro --single-item <stage>` for each, so DVC alone
decides what is stale (a task whose stage is up to date finishes in a Completed state
named "Skipped"), a round
started here and one started by `dvc repro` share the cache and produce the same
artifacts, and each stage's output lands in its task's logs. After a round's stages, a
table artifact shows that round's metrics.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run
from prefect.states import Completed, State

from pipeline.dag import ordered_stages
from pipeline.rounds import add_rounds, extend_rounds
from stages.errors import SuperalignError
from stages.params import load_params
from stages.round_metrics import flat, round_metrics
from stages.tracking import QUIET_ENV

USER_ERROR = 2  # stage mains exit 2 for bad input: retrying cannot help
LOCK_NAME = ".dvc/tmp/superalign-run.lock"


class StageFailed(RuntimeError):
    def __init__(self, stage: str, returncode: int, message: str):
        super().__init__(f"{stage} failed (exit {returncode}): {message}")
        self.returncode = returncode


def _retry_unless_user_error(task, task_run, state) -> bool:
    try:
        state.result()
    except StageFailed as exc:
        return exc.returncode != USER_ERROR
    except Exception:
        return True
    return False


@task(
    task_run_name="{stage}",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=_retry_unless_user_error,
    cache_policy=None,
)
def reproduce(stage: str, root: str, campaign: str) -> State:
    """Ask DVC to reproduce one stage: a Completed state holding "ran", or one named
    Skipped holding "skipped" when DVC found it up to date. The task run is named like the
    DVC stage and its MLflow run."""
    logger = get_run_logger()
    env = (
        os.environ
        | QUIET_ENV
        | {
            "SUPERALIGN_CAMPAIGN": campaign,
            "SUPERALIGN_FLOW_RUN_ID": str(flow_run.get_id() or ""),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "--single-item", stage],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.strip() and "it/s]" not in line:
            logger.info(line)
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error:", "ERROR"))]
        raise StageFailed(stage, proc.returncode, (errors or ["see the task log"])[0])
    if f"Running stage '{stage}'" in proc.stdout:
        return Completed(data="ran")
    # A state of its own, so the Prefect UI says "Skipped" on the task without its logs.
    return Completed(name="Skipped", message="up to date: DVC ran nothing", data="skipped")


def round_of(stage: str) -> str:
    """`critique@r2` -> r2; suite, prepare and baseline belong to r0; report to the campaign."""
    if "@" in stage:
        return stage.split("@", 1)[1]
    return "r0" if stage in ("suite", "prepare", "baseline") else "campaign"


def round_table(root: Path, round_name: str) -> list[dict]:
    """The round's metrics as rows of (stage, metric, value), from the DVC metrics files."""
    rows = []
    for stage, metrics in round_metrics(root / "metrics", round_name).items():
        for key, value in flat(metrics).items():
            per_bucket = key.startswith(("share.", "prior_failure."))
            if isinstance(value, (int, float)) and not per_bucket:
                rows.append({"stage": stage, "metric": key, "value": round(float(value), 4)})
    return rows


def publish_round(root: Path, round_name: str, campaign: str, outcomes: dict[str, str]) -> None:
    rows = round_table(root, round_name)
    key = re.sub(r"[^a-z0-9-]", "-", f"{campaign}-{round_name}".lower())
    if rows:
        create_table_artifact(rows, key=key, description=f"Metrics of round {round_name}")
    lookup = {(r["stage"], r["metric"]): r["value"] for r in rows}
    accuracy = lookup.get(("evaluate", "heldout.accuracy"))
    ran = [s for s, o in outcomes.items() if o == "ran"]
    create_markdown_artifact(
        f"### Round {round_name} ({campaign})\n\n"
        f"- stages run: {len(ran)} of {len(outcomes)}"
        f" ({', '.join(ran) if ran else 'all up to date'})\n"
        f"- held-out accuracy: {accuracy if accuracy is not None else 'n/a'}\n"
        f"- preference pairs: {lookup.get(('build_prefs', 'pairs'), 'n/a')}\n"
        f"- critic agreement with gold: {lookup.get(('critique', 'agreement_with_gold'), 'n/a')}\n",
        key=f"{key}-summary",
        description=f"Summary of round {round_name}",
    )


@contextlib.contextmanager
def run_lock(root: Path, wait_seconds: float) -> Iterator[None]:
    """One campaign run per repository at a time: the second waits, then fails clearly."""
    path = root / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    raise SuperalignError(
                        f"another superalign run holds {path} ({holder}); "
                        "wait for it or pass a longer --wait"
                    ) from None
                time.sleep(1)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@flow(name="superalign-rounds", log_prints=True)
def superalign_rounds(
    root: str = ".",
    rounds: int | None = None,
    add: int = 0,
    campaign: str | None = None,
    wait_seconds: float = 0,
) -> dict[str, str]:
    """Run (or resume) the campaign: optionally extend `rounds:` to N rounds or by `add`
    more, then reproduce every stage of dvc.yaml in order. Returns stage -> ran|skipped."""
    logger = get_run_logger()
    root_path = Path(root).resolve()
    params_path = root_path / "params.yaml"
    with run_lock(root_path, wait_seconds):
        added = extend_rounds(params_path, rounds) if rounds else []
        added += add_rounds(params_path, add) if add else []
        if added:
            logger.info(f"added rounds {', '.join(added)} to params.yaml")
        params = load_params(params_path)
        campaign = campaign or os.environ.get("SUPERALIGN_CAMPAIGN") or params["tracking"].campaign
        stages = ordered_stages(root_path)
        outcomes: dict[str, str] = {}
        for index, stage in enumerate(stages):
            outcomes[stage] = reproduce(stage, str(root_path), campaign).result()
            this_round = round_of(stage)
            next_round = round_of(stages[index + 1]) if index + 1 < len(stages) else None
            if this_round not in ("campaign", next_round):
                round_outcomes = {s: o for s, o in outcomes.items() if round_of(s) == this_round}
                publish_round(root_path, this_round, campaign, round_outcomes)
        ran = sum(o == "ran" for o in outcomes.values())
        logger.info(f"{ran} stage(s) ran, {len(outcomes) - ran} up to date")
        return outcomes
