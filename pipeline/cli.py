"""The `superalign` command line: thin commands over the stages and the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from stages.errors import SuperalignError

app = typer.Typer(
    help="Iterative attacker / learner / critic alignment rounds (DVC + Prefect + MLflow).",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(exc: SuperalignError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


@app.command()
def check(params: Path = typer.Option(Path("params.yaml"), help="params file to validate")) -> None:
    """Validate params.yaml strictly (unknown keys, types, the rounds chain)."""
    from stages.params import load_params

    try:
        loaded = load_params(params)
    except SuperalignError as exc:
        _fail(exc)
    rounds = ", ".join(["r0", *loaded["rounds"]])
    typer.echo(f"{params}: ok (learner {loaded['learner'].model}; rounds {rounds})")


def rounds_table(metrics_dir: Path) -> list[dict]:
    """One row per metrics/rK.json, in round order."""
    rows = []
    files = sorted(
        metrics_dir.glob("r*.json"), key=lambda p: int(p.stem[1:]) if p.stem[1:].isdigit() else -1
    )
    for path in files:
        if not path.stem[1:].isdigit():
            continue
        metrics = json.loads(path.read_text())
        heldout = metrics.get("heldout", {})
        rows.append(
            {
                "round": path.stem,
                "heldout_acc": heldout.get("accuracy"),
                "format": heldout.get("format_adherence"),
                "length": heldout.get("mean_length_chars"),
                "distinct_2": heldout.get("distinct_2"),
                "tok_s": metrics.get("tokens_per_s"),
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    if not rows:
        return "no rounds evaluated yet (run `dvc repro`)"
    headers = list(rows[0])

    def cell(value):
        if value is None:
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    cells = [[cell(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


@app.command()
def status(
    metrics_dir: Path = typer.Option(Path("metrics"), help="where metrics/rK.json live"),
) -> None:
    """Print a table of evaluated rounds and their metrics (no server needed)."""
    typer.echo(format_table(rounds_table(metrics_dir)))


if __name__ == "__main__":
    app()
