"""How often the rules critic's refusal reading (`refusal.declines`) agrees with people:
PyRIT's human-labelled refusal scorer evaluations (`human_score` 1 = refusal), read as
files from the `pyrit` wheel (install it with `pip install --no-deps pyrit==1.1.0`;
nothing is imported from it). refusal.csv is the development file, refusal_extra.csv is
held out. Run: python -m stages.suites.refusal_agreement [--json]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from collections.abc import Callable

from ..errors import SuperalignError, one_line_errors
from ..packaged import PYRIT, package_file
from .refusal import declines

FILES = {
    "dev": "pyrit/datasets/scorer_evals/refusal_scorer/refusal.csv",
    "heldout": "pyrit/datasets/scorer_evals/refusal_scorer/refusal_extra.csv",
}
COLUMNS = ("objective", "assistant_response", "human_score")
# Words too common to show that a response is about its objective.
_COMMON = frozenset(
    "what which that this with your about from have some tell write give make does explain "
    "simple short concept help could would should there their them they into most like "
    "know".split()
)


def labelled_rows(path: str) -> list[tuple[str, str, bool]]:
    """(objective, response, a person called it a refusal) for each row of a PyRIT
    scorer-eval CSV."""
    text = package_file(PYRIT, path, "the refusal agreement check").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    # Only the leading `# dataset_version=...` comment lines: a response may hold a line
    # that starts with "#" (a markdown heading), which must stay part of it.
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    rows = csv.DictReader(io.StringIO("".join(lines)))
    missing = [c for c in COLUMNS if c not in (rows.fieldnames or [])]
    if missing:
        raise SuperalignError(f"the refusal agreement check: {path} has no {missing[0]} column")
    return [(r["objective"], r["assistant_response"], float(r["human_score"]) >= 0.5) for r in rows]


def labelled_responses(path: str) -> list[tuple[str, bool]]:
    """(response, a person called it a refusal) for each row of a PyRIT scorer-eval CSV."""
    return [(response, human) for _, response, human in labelled_rows(path)]


def _content_words(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in _COMMON}


def off_objective(objective: str, response: str) -> bool:
    """True when the response shares no content word with its objective: an answer to
    another request, which PyRIT's people count as a refusal and which no reading of the
    response alone can tell from an answer (the same text is labelled both ways)."""
    return not (_content_words(objective) & _content_words(response))


def agreement(detector: Callable[[str], bool] = declines) -> dict[str, dict]:
    """Per file ('dev', 'heldout'): n, refusals (human), agreement with people,
    false_positive_rate (answers called refusals / answers), missed (refusals not seen),
    and missed_off_objective: those missed that answer another request (`off_objective`),
    out of reach of a detector that reads the response alone."""
    out = {}
    for name, path in FILES.items():
        rows = labelled_rows(path)
        said = [(bool(detector(response)), human) for _, response, human in rows]
        unrelated = [off_objective(objective, response) for objective, response, _ in rows]
        negatives = sum(not h for _, h in said)
        false_pos = sum(d and not h for d, h in said)
        out[name] = {
            "n": len(said),
            "refusals": sum(h for _, h in said),
            "agreement": sum(d == h for d, h in said) / len(said) if said else 0.0,
            "false_positive_rate": false_pos / negatives if negatives else 0.0,
            "missed": sum(h and not d for d, h in said),
            "missed_off_objective": sum(h and not d and u for (d, h), u in zip(said, unrelated)),
        }
    return out


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = agreement()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{'file':8} {'n':>4} {'agreement':>10} {'false pos':>10} {'missed':>12} "
        f"{'of them off-objective':>22}"
    )
    for name, f in figures.items():
        missed = f"{f['missed']} of {f['refusals']}"
        print(
            f"{name:8} {f['n']:4} {f['agreement']:10.3f} "
            f"{f['false_positive_rate']:10.3f} {missed:>12} {f['missed_off_objective']:>22}"
        )


if __name__ == "__main__":
    main()
