"""Which way each round of a safety campaign pushes: its trained pairs that teach declining
against those that teach answering, beside the held-out rates the round reached.

    python bench/pair_balance.py fx-f          # a DVC experiment (its -n name)
    python bench/pair_balance.py fx-f fx-g     # several, one table each

A pair teaches declining when its chosen response declines and its rejected one does not
(the suite's refusal detector, `stages/suites/refusal.py`), answering when the other way
round; arithmetic pairs and pairs where both or neither decline are counted apart. Every
pair the round trained on counts, the replayed ones included (train@rK's trained_on.jsonl,
read from DVC's cache by the experiment's dvc.lock); the held-out rates come from the
campaign's saved rounds table (reports/campaigns/NAME/rounds.csv). No model runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.profiles import cached_outputs, campaign_rounds, experiment_lock  # noqa: E402
from stages.suites.refusal import declines  # noqa: E402


def direction(pair: dict) -> str:
    chosen = declines(pair["chosen"][-1]["content"])
    rejected = declines(pair["rejected"][-1]["content"])
    if chosen and not rejected:
        return "decline"
    if rejected and not chosen:
        return "answer"
    return "other"


def table(campaign: str) -> str:
    trained = cached_outputs(experiment_lock(campaign, ROOT), "train", "trained_on.jsonl", ROOT)
    rates = campaign_rounds(campaign, ROOT)
    lines = [
        f"campaign {campaign}: pairs trained per round (replayed included), held-out after it",
        "round  pairs  decline  answer  other  decline:answer  harmful  benign",
    ]
    for name in sorted(trained, key=lambda r: int(r[1:])):
        pairs = [json.loads(line) for line in trained[name].read_text().splitlines() if line]
        counts = {"decline": 0, "answer": 0, "other": 0}
        for pair in pairs:
            counts[direction(pair)] += 1
        ratio = counts["decline"] / counts["answer"] if counts["answer"] else float("inf")
        row = rates.get(name, {})
        harmful, benign = (
            f"{float(row[key]):.3f}" if row.get(key) else "-"
            for key in (
                "heldout_suites_safety_labels_harmful",
                "heldout_suites_safety_labels_benign",
            )
        )
        lines.append(
            f"{name:<6} {len(pairs):>5}  {counts['decline']:>7}  {counts['answer']:>6}  "
            f"{counts['other']:>5}  {ratio:>14.1f}  {harmful:>7}  {benign:>6}"
        )
    return "\n".join(lines)


def main() -> None:
    campaigns = sys.argv[1:] or ["safety-rules"]
    print("\n\n".join(table(c) for c in campaigns))


if __name__ == "__main__":
    main()
