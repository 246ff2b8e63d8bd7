"""Re-grade a campaign's saved held-out answers with the suite's ground truth as the code
stands now, beside the rates the campaign reported when it ran. No model runs.

    python bench/regrade.py rules-fast                 # a DVC experiment (its -n name)
    python bench/regrade.py rules-fast judge-fixed     # several, one table each
    python bench/regrade.py rules-fast --show r3       # and the answers whose grade moved
    python bench/regrade.py mirror-f1-lr7-seed{0,1,2,3,4} --gains  # r0 -> last round, and the mean

For a change to a grader (the refusal detector, say): how much of a figure measured before
was the grader's mistake rather than the learner's behaviour. The answers are baseline's and
evaluate@rK's eval.jsonl, read from DVC's cache by the experiment's dvc.lock; the reported
rates come from its saved rounds table (reports/campaigns/NAME/rounds.csv).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.profiles import campaign_rounds, heldout_results  # noqa: E402
from stages.suites.grading import grade  # noqa: E402
from stages.suites.refusal import echoes_guidance  # noqa: E402

LABELS = ("harmful", "benign")


def heldout_answers(campaign: str) -> dict[str, list[dict]]:
    """Round -> its graded held-out results with a label (the safety part of the set)."""
    return {
        name: [r for r in rows if r.get("label") in LABELS]
        for name, rows in heldout_results(campaign, ROOT).items()
    }


def regraded(row: dict) -> bool:
    return grade({"label": row["label"]}, row["response"]).correct


def table(campaign: str, show: str | None = None) -> str:
    then = campaign_rounds(campaign, ROOT)
    lines = [
        f"campaign {campaign}: held-out rates as reported -> re-graded now",
        "round  harmful (safe response)   benign (answered)",
    ]
    moved = []
    for name, rows in heldout_answers(campaign).items():
        now = [regraded(r) for r in rows]
        cells = []
        for label in LABELS:
            part = [ok for r, ok in zip(rows, now) if r["label"] == label]
            rate = sum(part) / len(part)
            before = then.get(name, {}).get(f"heldout_suites_safety_labels_{label}")
            cells.append(f"{float(before):.3f} -> {rate:.3f}" if before else f"  -   -> {rate:.3f}")
        if name == show:
            moved = [(r, ok) for r, ok in zip(rows, now) if ok != bool(r["correct"])]
        lines.append(f"{name:<6} {cells[0]:<24}  {cells[1]}")
    for r, ok in moved:
        verdict = "now safe/answered" if ok else "now failed"
        lines.append(f"  [{r['label']}, {verdict}] {r['prompt'][:60]!r}: {r['response'][:120]!r}")
    return "\n".join(lines)


def gains(campaigns: list[str]) -> str:
    """Per campaign, the change from r0 to its last round in points, as reported (the
    grade saved with each answer) -> re-graded now, and the share of the last round's
    labelled answers that echo the critique's advice; then the mean over the campaigns."""
    lines = [
        "r0 -> last round, points: as reported -> re-graded now",
        f"{'campaign':<28}{'harmful':>18}{'benign':>18}{'echoes':>9}",
    ]
    rows = []
    for campaign in campaigns:
        answers = heldout_answers(campaign)
        first, last = answers["r0"], answers[max(answers, key=lambda k: int(k[1:]))]

        row = [
            _change(first, last, label, g)
            for label in LABELS
            for g in (lambda r: bool(r["correct"]), regraded)
        ]
        row.append(sum(echoes_guidance(r["response"]) for r in last) / len(last))
        rows.append(row)
        lines.append(
            f"{campaign:<28}{_pair(row[0], row[1]):>18}{_pair(row[2], row[3]):>18}{row[4]:>9.3f}"
        )
    if len(rows) > 1:
        mean = [sum(col) / len(rows) for col in zip(*rows, strict=True)]
        lines.append(
            f"{'mean':<28}{_pair(mean[0], mean[1]):>18}{_pair(mean[2], mean[3]):>18}{mean[4]:>9.3f}"
        )
    return "\n".join(lines)


def _change(first: list[dict], last: list[dict], label: str, grader) -> float:
    """Points gained on `label` from the answers `first` to the answers `last`."""

    def rate(rows: list[dict]) -> float:
        part = [grader(r) for r in rows if r["label"] == label]
        return sum(part) / len(part)

    return 100 * (rate(last) - rate(first))


def _pair(before: float, now: float) -> str:
    return f"{before:+.1f} -> {now:+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaigns", nargs="*", default=["rules-fast"])
    parser.add_argument("--show", help="a round whose answers that changed grade are listed")
    parser.add_argument(
        "--gains", action="store_true", help="one line per campaign: r0 -> last round, and the mean"
    )
    args = parser.parse_args()
    if args.gains:
        print(gains(args.campaigns))
        return
    print("\n\n".join(table(c, args.show) for c in args.campaigns))


if __name__ == "__main__":
    main()
