"""Reading a round's metrics files back: the one reader of the layout dvc.yaml writes
(metrics/rK.json from evaluate, metrics/<stage>/rK.json from the other stages)."""

from __future__ import annotations

import json
from pathlib import Path

STAGES_WITH_METRICS = ("attack", "sample", "critique", "build_prefs", "train")


def round_metrics(metrics_dir: Path, round_name: str) -> dict[str, dict]:
    """Stage -> its metrics for the round ("evaluate" for metrics/rK.json); {} where absent."""
    files = {"evaluate": metrics_dir / f"{round_name}.json"}
    files |= {s: metrics_dir / s / f"{round_name}.json" for s in STAGES_WITH_METRICS}
    return {s: json.loads(p.read_text()) if p.is_file() else {} for s, p in files.items()}


def flat(metrics: dict, prefix: str = "") -> dict:
    """Nested metrics to dotted keys: {"heldout": {"accuracy": 1}} -> {"heldout.accuracy": 1}."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
