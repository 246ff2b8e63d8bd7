"""Stage `report`: every metric by round in one table, plus the campaign's gain and PGR.

`reports/rounds.csv` (one row per round) is what `dvc plots show` renders;
`reports/summary.json` holds the gain (final minus r0 held-out accuracy) and, when a
ceiling campaign is named, the performance gap recovered:
    PGR = (this campaign's gain) / (the ceiling campaign's gain),
the weak-to-strong measure: how much of the verifier-supervised improvement a weak
critic recovers. The ceiling's gain is read from MLflow, where every campaign's report
logs its gain.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from .errors import SuperalignError
from .records import atomic_path, write_json
from .round_metrics import flat, round_metrics
from .stage import Stage, option, stage_main
from .tracking import DEFAULT_TRACKING_URI, campaign_name

HEADLINE = "heldout.accuracy"  # the default `report.metric`

# column -> (stage whose metrics file holds it, dotted key); see round_metrics
COLUMNS = {
    "heldout_accuracy": ("evaluate", "heldout.accuracy"),
    "benchmark_accuracy": ("evaluate", "benchmark.accuracy"),
    "fresh_failure_rate": ("evaluate", "fresh.failure_rate"),
    "format_adherence": ("evaluate", "heldout.format_adherence"),
    "mean_length_chars": ("evaluate", "heldout.mean_length_chars"),
    "distinct_2": ("evaluate", "heldout.distinct_2"),
    "degenerate": ("evaluate", "heldout.degenerate"),
    "tokens_per_s": ("evaluate", "tokens_per_s"),
    "attack_queries": ("attack", "queries"),
    "critic_accept_rate": ("critique", "accept_rate"),
    "critic_null_rate": ("critique", "null_rate"),
    "critic_agreement_with_gold": ("critique", "agreement_with_gold"),
    "critic_kappa_with_human": ("critique", "kappa_with_human"),
    "pairs": ("build_prefs", "pairs"),
    "revision_share": ("build_prefs", "revision_share"),
    "train_loss": ("train", "train_loss"),
    "reward_accuracy": ("train", "reward_accuracy"),
    "reward_margin": ("train", "reward_margin"),
    "step_scale": ("train", "step_scale"),  # the share of the update kept (step search)
}


def _get(metrics: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(metrics, dict) or part not in metrics:
            return None
        metrics = metrics[part]
    return metrics


# Columns a suite's metrics add where present: per-label rates (`labels.harmful` is the
# safe-response rate), the share of echoes (grading.ground_truth_metrics) and, in a
# mixture, each suite's accuracy, echoes and per-label rates.
SUITE_COLUMNS = re.compile(
    r"heldout\.(labels\.[^.]+|echoes|suites\.[^.]+\.(accuracy|echoes|labels\.[^.]+))"
    r"|transfer\.(accuracy|degenerate|labels\.[^.]+)"
)
TRANSFER_COLUMN = re.compile(r"transfer_(accuracy|labels_\w+)")


def column_name(key: str) -> str:
    """`heldout.suites.safety.labels.harmful` -> `heldout_suites_safety_labels_harmful`."""
    return re.sub(r"\W", "_", key)


def rounds_table(metrics_dir: Path, rounds: list[str], headline: str = HEADLINE) -> list[dict]:
    """One row per round: the fixed columns, the suite's own, and the headline metric."""
    loaded = {}
    for name in rounds:
        loaded[name] = round_metrics(metrics_dir, name)
        if not loaded[name]["evaluate"]:
            raise SuperalignError(
                f"report: {metrics_dir / f'{name}.json'} is missing; run the round first"
            )
    extra = sorted(
        {k for m in loaded.values() for k in flat(m["evaluate"]) if SUITE_COLUMNS.fullmatch(k)}
        | {headline}
    )
    rows = []
    for name in rounds:
        row = {"round": name, "round_number": int(name[1:])}
        row |= {col: _get(loaded[name][stage], key) for col, (stage, key) in COLUMNS.items()}
        row |= {column_name(k): _get(loaded[name]["evaluate"], k) for k in extra}
        rows.append(row)
    return rows


def summarize(rows: list[dict], ceiling_gain: float | None, headline: str = HEADLINE) -> dict:
    """Gain of the headline metric from r0 to the last round, and PGR against a ceiling."""
    values = [r[column_name(headline)] for r in rows]
    first, last = values[0], values[-1]
    gain = None if first is None or last is None else last - first
    summary = {
        "rounds": len(rows) - 1,
        "heldout_accuracy_r0": rows[0]["heldout_accuracy"],
        "heldout_accuracy_final": rows[-1]["heldout_accuracy"],
        "metric": headline,
        "metric_r0": first,
        "metric_final": last,
        "gain": gain,
        "monotonic": all(b >= a for a, b in zip(values, values[1:]))
        if None not in values
        else None,
        "ceiling_gain": ceiling_gain,
        "pgr": gain / ceiling_gain if gain is not None and ceiling_gain else None,
        # rounds whose step search kept none of the update: they trained nothing
        "rounds_kept_nothing": sum(1 for r in rows[1:] if r.get("step_scale") == 0),
    }
    for column in sorted(c for c in rows[0] if TRANSFER_COLUMN.fullmatch(c)):
        by_round = [r.get(column) for r in rows]
        summary[column] = dict(zip((r["round"] for r in rows), by_round))
        if by_round[0] is not None and by_round[-1] is not None:
            summary[f"{column}_gain"] = by_round[-1] - by_round[0]
    return summary


def ceiling_gain_from_mlflow(campaign: str) -> float | None:
    """The named campaign's held-out gain as its report logged it, or None."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
    experiment = client.get_experiment_by_name(
        os.environ.get("SUPERALIGN_EXPERIMENT", "superalign")
    )
    if experiment is None:
        return None
    found = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`superalign.kind` = 'campaign' and tags.`superalign.campaign` = '{campaign}'",
        max_results=1,
    )
    if not found:
        return None
    # The ceiling's own report logged its gain on its campaign run; reading that (rather
    # than its per-round accuracies) works even when its baseline came from DVC's cache.
    history = client.get_metric_history(found[0].info.run_id, "report.gain")
    return max(history, key=lambda m: m.timestamp).value if history else None


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: "" if v is None else (round(v, 6) if isinstance(v, float) else v)
                for k, v in row.items()
            }
        )
    return buffer.getvalue()


@stage_main(
    "report",
    __doc__,
    option("--metrics-dir", required=True),
    option("--table", required=True, help="CSV to write (one row per round)"),
    option("--summary", required=True, help="summary JSON to write"),
    round_of=lambda args, params: ["r0", *params["rounds"]][-1],
    dvc_name=lambda round_name: "report",
)
def main(stage: Stage) -> None:
    args, params = stage.args, stage.params
    rounds = ["r0", *params["rounds"]]
    campaign = campaign_name(params["tracking"].campaign)
    p = params["report"]
    rows = rounds_table(Path(args.metrics_dir), rounds, p.metric)
    ceiling = p.ceiling_campaign
    ceiling_gain = ceiling_gain_from_mlflow(ceiling) if ceiling and ceiling != campaign else None
    summary = summarize(rows, ceiling_gain, p.metric)
    summary |= {"campaign": campaign, "ceiling_campaign": ceiling}
    table = to_csv(rows)
    with atomic_path(args.table) as tmp:
        tmp.write_text(table, encoding="utf-8")
    write_json(args.summary, summary)
    stage.run.log_metrics(
        {k: v for k, v in summary.items() if isinstance(v, (int, float))}, on_campaign=True
    )
    stage.run.log_text(table, "rounds.csv")
    values = [r[column_name(p.metric)] for r in rows]
    trend = " -> ".join(f"{v:.3f}" for v in values if v is not None)
    pgr = f", PGR {summary['pgr']:.2f} vs {ceiling}" if summary["pgr"] is not None else ""
    print(f"report: {p.metric} {trend}{pgr}")


if __name__ == "__main__":
    main()
