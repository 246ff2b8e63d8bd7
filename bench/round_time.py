"""Where a campaign's time goes: seconds per stage per round, from the MLflow stage runs.

    python bench/round_time.py                 # the campaign of params.yaml (tracking.campaign)
    python bench/round_time.py safety-rules    # a DVC experiment's campaign (its -n name)

Each stage run's start-to-end time is what the stage itself took (model loading
included); a round's total adds about 7 s a stage of process start and DVC bookkeeping,
which MLflow does not see (the gap between the sum and `time dvc repro`). When a stage ran
more than once for a round (a rerun), the latest run counts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = (
    "suite",
    "prepare",
    "evaluate",
    "attack",
    "sample",
    "critique",
    "revise",
    "build_prefs",
    "train",
)
PROCESS_START_S = 7  # per stage, measured as the gap between MLflow's sum and `time dvc repro`


def stage_seconds(campaign: str) -> dict[str, dict[str, float]]:
    """round -> stage -> seconds of its latest run."""
    from mlflow.tracking import MlflowClient

    from stages.tracking import DEFAULT_TRACKING_URI, quiet_telemetry

    quiet_telemetry()
    client = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
    experiment = client.get_experiment_by_name(
        os.environ.get("SUPERALIGN_EXPERIMENT", "superalign")
    )
    if experiment is None:
        raise SystemExit("no MLflow experiment 'superalign' here: run a campaign first")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`superalign.kind` = 'stage' and tags.`superalign.campaign` = '{campaign}'",
        order_by=["attributes.start_time ASC"],
        max_results=5000,
    )
    table: dict[str, dict[str, float]] = {}
    for run in runs:
        if run.info.end_time is None:
            continue
        stage, round_name = run.data.tags["superalign.stage"], run.data.tags["superalign.round"]
        table.setdefault(round_name, {})[stage] = (run.info.end_time - run.info.start_time) / 1000
    return table


def main() -> None:
    from stages.params import load_params

    campaign = (
        sys.argv[1] if len(sys.argv) > 1 else load_params(ROOT / "params.yaml")["tracking"].campaign
    )
    table = stage_seconds(campaign)
    if not table:
        raise SystemExit(f"no finished stage runs for campaign '{campaign}'")
    stages = [s for s in STAGES if any(s in row for row in table.values())]
    print(f"campaign {campaign}: seconds per stage (MLflow run times)")
    print("round  " + "  ".join(f"{s:>11}" for s in stages) + "  total+start")
    for round_name in sorted(table, key=lambda r: int(r[1:])):
        row = table[round_name]
        total = sum(row.values()) + PROCESS_START_S * len(row)
        cells = "  ".join(f"{row[s]:>11.1f}" if s in row else f"{'-':>11}" for s in stages)
        print(f"{round_name:<5}  {cells}  {total / 60:>8.1f} min")


if __name__ == "__main__":
    main()
