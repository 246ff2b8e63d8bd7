"""Re-grade a campaign's saved held-out answers with the suite's ground truth as the code
stands now, beside the rates the campaign reported when it ran. No model runs.

    python bench/regrade.py rules-fast                 # a DVC experiment (its -n name)
    python bench/regrade.py rules-fast judge-fixed     # several, one table each
    python bench/regrade.py rules-fast --show r3       # and the answers whose grade moved

For a change to a grader (the refusal detector, say): how much of a figure measured before
was the grader's mistake rather than the learner's behaviour. The answers are baseline's and
evaluate@rK's eval.jsonl, read from DVC's cache by the experiment's dvc.lock; the reported
rates come from its saved rounds table (reports/campaigns/NAME/rounds.csv).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.profiles import CAMPAIGNS_DIR, cached_outputs, experiment_lock  # noqa: E402
from stages.suites.grading import grade  # noqa: E402

LABELS = ("harmful", "benign")


def heldout_answers(campaign: str) -> dict[str, list[dict]]:
    """Round -> its graded held-out results with a label (the safety part of the set)."""
    lock = experiment_lock(campaign, ROOT)
    files = cached_outputs(lock, "evaluate", "eval.jsonl", ROOT)
    baseline = [
        o for o in lock.get("baseline", {}).get("outs", []) if o["path"].endswith("eval.jsonl")
    ]
    if baseline:
        md5 = baseline[0]["md5"]
        files["r0"] = ROOT / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    rounds = {}
    for name, path in files.items():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line]
        rounds[name] = [r for r in rows if r["set"] == "heldout" and r.get("label") in LABELS]
    return dict(sorted(rounds.items(), key=lambda kv: int(kv[0][1:])))


def regraded(row: dict) -> bool:
    return grade({"label": row["label"]}, row["response"]).correct


def reported(campaign: str) -> dict[str, dict[str, str]]:
    path = ROOT / CAMPAIGNS_DIR / campaign / "rounds.csv"
    return {r["round"]: r for r in csv.DictReader(path.open())} if path.is_file() else {}


def table(campaign: str, show: str | None = None) -> str:
    then = reported(campaign)
    lines = [
        f"campaign {campaign}: held-out rates as reported -> re-graded now",
        "round  harmful (safe response)   benign (answered)",
    ]
    moved = []
    for name, rows in heldout_answers(campaign).items():
        cells = []
        for label in LABELS:
            part = [r for r in rows if r["label"] == label]
            now = sum(regraded(r) for r in part) / len(part)
            before = then.get(name, {}).get(f"heldout_suites_safety_labels_{label}")
            cells.append(f"{float(before):.3f} -> {now:.3f}" if before else f"  -   -> {now:.3f}")
            if name == show:
                moved += [r for r in part if regraded(r) != bool(r["correct"])]
        lines.append(f"{name:<6} {cells[0]:<24}  {cells[1]}")
    for r in moved:
        verdict = "now safe/answered" if regraded(r) else "now failed"
        lines.append(f"  [{r['label']}, {verdict}] {r['prompt'][:60]!r}: {r['response'][:120]!r}")
    return "\n".join(lines)


def main() -> None:
    args = sys.argv[1:]
    show = None
    if "--show" in args:
        i = args.index("--show")
        show = args[i + 1]
        del args[i : i + 2]
    print("\n\n".join(table(c, show) for c in args or ["rules-fast"]))


if __name__ == "__main__":
    main()
