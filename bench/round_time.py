"""Where a campaign's time goes: seconds per stage per round, from the MLflow stage runs.

    python bench/round_time.py                 # the campaign of params.yaml (tracking.campaign)
    python bench/round_time.py safety-rules    # a DVC experiment's campaign (its -n name)

Each stage run's start-to-end time is what the stage itself took (model loading
included). What MLflow does not see is the time between one stage run's end and the
next one's start: DVC's bookkeeping, the next process starting, its imports and params.
The bench measures that gap before each stage (the `between` column sums a round's); a
gap over a minute means the stages did not run back to back (a rerun, a pause), and the
campaign's median gap stands in for it. When a stage ran more than once for a round (a
rerun), the latest run counts.

Round times depend on the machine as much as on the code: the last column is the
round's evaluate throughput (greedy generation, tokens/s), so two campaigns' times can be
compared as measured on the same speed of machine. The baseline (r0) answers the same
held-out set in every campaign of a suite, so its figure is the machine's.
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
BACK_TO_BACK_S = 60  # a longer gap between two stage runs is not one stage start


def stage_runs(campaign: str) -> list:
    """The campaign's finished and unfinished stage runs in MLflow, oldest first."""
    from mlflow.tracking import MlflowClient

    from stages.tracking import DEFAULT_TRACKING_URI, quiet_telemetry

    quiet_telemetry()
    client = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
    experiment = client.get_experiment_by_name(
        os.environ.get("SUPERALIGN_EXPERIMENT", "superalign")
    )
    if experiment is None:
        raise SystemExit("no MLflow experiment 'superalign' here: run a campaign first")
    return client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`superalign.kind` = 'stage' and tags.`superalign.campaign` = '{campaign}'",
        order_by=["attributes.start_time ASC"],
        max_results=5000,
    )


def stage_seconds(runs: list) -> dict[str, dict[str, tuple[float, float | None]]]:
    """round -> stage -> (seconds of its latest run, seconds since the run before it
    ended; None when they did not run back to back)."""
    table: dict[str, dict[str, tuple[float, float | None]]] = {}
    previous_end = None
    for run in runs:
        if run.info.end_time is None:
            continue
        start, end = run.info.start_time / 1000, run.info.end_time / 1000
        gap = None if previous_end is None else start - previous_end
        previous_end = end
        stage, round_name = run.data.tags["superalign.stage"], run.data.tags["superalign.round"]
        if stage not in STAGES:  # the campaign's report, not a round's work
            continue
        back_to_back = gap is not None and 0 <= gap <= BACK_TO_BACK_S
        table.setdefault(round_name, {})[stage] = (end - start, gap if back_to_back else None)
    return table


def generation_speed(runs: list) -> dict[str, float]:
    """round -> its latest evaluate run's greedy tokens/s."""
    return {
        run.data.tags["superalign.round"]: run.data.metrics["tokens_per_s"]
        for run in runs
        if run.data.tags.get("superalign.stage") == "evaluate"
        and "tokens_per_s" in run.data.metrics
    }


def main() -> None:
    from stages.params import load_params

    campaign = (
        sys.argv[1] if len(sys.argv) > 1 else load_params(ROOT / "params.yaml")["tracking"].campaign
    )
    runs = stage_runs(campaign)
    print_table(campaign, stage_seconds(runs), generation_speed(runs))


def print_table(
    campaign: str,
    table: dict[str, dict[str, tuple[float, float | None]]],
    speed: dict[str, float],
) -> None:
    if not table:
        raise SystemExit(f"no finished stage runs for campaign '{campaign}'")
    stages = [s for s in STAGES if any(s in row for row in table.values())]
    gaps = sorted(g for row in table.values() for _, g in row.values() if g is not None)
    typical = gaps[len(gaps) // 2] if gaps else 0.0
    print(f"campaign {campaign}: seconds per stage (MLflow run times)")
    print(
        "round  "
        + "  ".join(f"{s:>11}" for s in stages)
        + "      between      total"
        + ("   tokens/s" if speed else "")
    )
    for round_name in sorted(table, key=lambda r: int(r[1:])):
        row = table[round_name]
        between = sum(typical if g is None else g for _, g in row.values())
        total = sum(seconds for seconds, _ in row.values()) + between
        cells = "  ".join(f"{row[s][0]:>11.1f}" if s in row else f"{'-':>11}" for s in stages)
        rate = f"  {speed[round_name]:>9.0f}" if round_name in speed else ""
        print(f"{round_name:<5}  {cells}  {between:>11.1f}  {total / 60:>5.1f} min{rate}")
    print(f"median time between two stage runs: {typical:.1f} s")


if __name__ == "__main__":
    main()
