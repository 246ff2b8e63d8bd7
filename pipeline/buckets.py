"""Held-out rates per bucket (a risk area, a benign category, a difficulty) round by round.

The whole-set rates hide where a campaign moves: in the safety campaigns a round that
gives back the benign answers one category lost can refuse a category it was never shown,
and the benign rate barely says so. `superalign buckets` shows it, for the workspace's
metrics/rK.json, a saved campaign's buckets.csv, or a DVC experiment's metrics.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from pipeline.profiles import CAMPAIGNS_DIR, _git, _show, experiment_ref
from pipeline.rounds import evaluated_rounds, round_order
from stages.errors import SuperalignError

BUCKETS_FILE = "buckets.csv"  # in a saved campaign's folder, beside rounds.csv


def bucket_rows(metrics: dict[str, dict]) -> list[dict]:
    """Round -> its metrics/rK.json (rounds in order) => one row per bucket: its suite
    (a mixture's part; None for a single suite), its name, its held-out rate each round."""
    rows: dict[tuple, dict] = {}
    for round_name, figures in metrics.items():
        heldout = figures.get("heldout") or {}
        suites = heldout.get("suites") or {None: heldout}
        for suite, suite_figures in suites.items():
            for bucket, rate in (suite_figures.get("buckets") or {}).items():
                row = rows.setdefault((suite, bucket), {"suite": suite, "bucket": bucket})
                row[round_name] = rate
    return list(rows.values())


def with_change(rows: list[dict]) -> list[dict]:
    """Each row plus `change`: its last round's rate minus its first's."""
    out = []
    for row in rows:
        rates = [v for k, v in row.items() if k not in ("suite", "bucket")]
        change = rates[-1] - rates[0] if len(rates) > 1 else None
        out.append(row | {"change": change})
    return out


def workspace_metrics(metrics_dir: Path) -> dict[str, dict]:
    """Round -> metrics/rK.json of this workspace, for every evaluated round."""
    return {
        name: json.loads((metrics_dir / f"{name}.json").read_text(encoding="utf-8"))
        for name in evaluated_rounds(metrics_dir)
    }


def experiment_metrics(name: str, root: Path = Path(".")) -> dict[str, dict]:
    """Round -> metrics/rK.json as DVC experiment `name` left them (its git ref)."""
    return ref_metrics(experiment_ref(name, root), root)


def ref_metrics(ref: str, root: Path = Path(".")) -> dict[str, dict]:
    """Round -> metrics/rK.json as git ref `ref` holds them (none: no metrics/ there)."""
    listed = (_git(root, "ls-tree", "--name-only", f"{ref}:metrics", check=False) or "").split()
    rounds = round_order(name for name in listed if name.endswith(".json"))
    return {r: json.loads(_show(ref, f"metrics/{r}.json", root)) for r in rounds}


def write_buckets(rows: list[dict], path: Path) -> None:
    """rows -> CSV (suite, bucket, r0, r1, ...), written atomically."""
    from stages.records import atomic_path

    rounds = [k for k in rows[0] if k not in ("suite", "bucket")] if rows else []
    text = io.StringIO()
    writer = csv.DictWriter(text, ["suite", "bucket", *rounds], lineterminator="\n")
    writer.writeheader()
    writer.writerows({**r, "suite": r["suite"] or ""} for r in rows)
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue(), encoding="utf-8")


def read_buckets(path: Path) -> list[dict]:
    """buckets.csv -> rows as bucket_rows gives them (an empty cell: not evaluated)."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for record in csv.DictReader(f):
            row = {"suite": record.pop("suite") or None, "bucket": record.pop("bucket")}
            rows.append(row | {k: float(v) if v else None for k, v in record.items()})
    return rows


def campaign_buckets(name: str, root: Path = Path(".")) -> list[dict]:
    """A saved campaign's buckets.csv, else the DVC experiment of that name's metrics."""
    saved = root / CAMPAIGNS_DIR / name / BUCKETS_FILE
    if saved.is_file():
        return read_buckets(saved)
    try:
        return bucket_rows(experiment_metrics(name, root))
    except SuperalignError:
        raise SuperalignError(
            f"no {saved} and no DVC experiment named '{name}' to read buckets from"
        ) from None
