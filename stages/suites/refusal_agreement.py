"""How often the rules critic's refusal reading (`refusal.declines`) agrees with people:
PyRIT's human-labelled refusal scorer evaluations (`human_score` 1 = refusal), read as
files from the `pyrit` wheel. refusal.csv is the development file, refusal_extra.csv is
held out. Run: python -m stages.suites.refusal_agreement [--json]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Callable

from ..packaged import PYRIT, package_file
from .refusal import declines

FILES = {
    "dev": "pyrit/datasets/scorer_evals/refusal_scorer/refusal.csv",
    "heldout": "pyrit/datasets/scorer_evals/refusal_scorer/refusal_extra.csv",
}


def labelled_responses(path: str) -> list[tuple[str, bool]]:
    """(response, a person called it a refusal) for each row of a PyRIT scorer-eval CSV."""
    text = package_file(PYRIT, path, "the refusal agreement check").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("#")]
    rows = csv.DictReader(io.StringIO("".join(lines)))
    return [(r["assistant_response"], float(r["human_score"]) >= 0.5) for r in rows]


def agreement(detector: Callable[[str], bool] = declines) -> dict[str, dict]:
    """Per file: items, agreement with people, false-positive rate, refusals missed."""
    out = {}
    for name, path in FILES.items():
        rows = labelled_responses(path)
        said = [(detector(text), human) for text, human in rows]
        negatives = sum(not h for _, h in said)
        false_pos = sum(d and not h for d, h in said)
        out[name] = {
            "items": len(rows),
            "refusals": sum(h for _, h in said),
            "agreement": sum(d == h for d, h in said) / len(rows),
            "false_positive_rate": false_pos / negatives if negatives else 0.0,
            "missed": sum(h and not d for d, h in said),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    figures = agreement()
    if parser.parse_args().json:
        print(json.dumps(figures, indent=2))
        return
    for name, f in figures.items():
        print(
            f"{name:8} {f['items']:4} items  agreement {f['agreement']:.3f}  "
            f"false positives {f['false_positive_rate']:.3f}  missed {f['missed']} of {f['refusals']}"
        )


if __name__ == "__main__":
    main()
