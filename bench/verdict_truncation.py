"""How short can an answer be and still get the verdict the whole answer gets?

The step search (`train.step_scales`) answers the validation set once per scale, and only
the verdicts count there: pass or fail per item, never the text. This bench takes a
campaign's saved held-out answers (the token budget `evaluate.max_new_tokens` allowed),
cuts each to its first N tokens, grades the cut answer by the same ground truth, and
counts the verdicts that change, per group, with the share of generated tokens the cut
keeps. `train.step_max_new_tokens` is chosen from this table. No model runs.

    python bench/verdict_truncation.py step-tight-seed0                # N = 16, 24, 32
    python bench/verdict_truncation.py step-tight-seed{0,1} --tokens 24,32

The answers are baseline's and evaluate@rK's eval.jsonl, read from DVC's cache by the
experiment's dvc.lock (as bench/regrade.py does); the tokenizer is models/r0's.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.profiles import heldout_results  # noqa: E402
from stages.suites.grading import grade  # noqa: E402


def group(row: dict) -> str:
    """harmful / benign (a labelled suite), or gold (a suite with a gold answer)."""
    return row.get("label") or "gold"


def table(rows: list[dict], tokenizer, budgets: list[int], budget: int) -> list[str]:
    """`budget`: the token budget the answers were generated under."""
    graded = [r for r in rows if r.get("correct") is not None and grade(r, "") is not None]
    ids = [tokenizer(r["response"], add_special_tokens=False)["input_ids"] for r in graded]
    # what each answer cost: its tokens and the end token, unless the budget cut it first
    cost = [min(len(i) + 1, budget) for i in ids]
    total = sum(cost)
    lines = [
        f"{'tokens':>6} {'answers':>8} {'same':>7} {'token share':>12}  changed (group: was -> now)"
    ]
    for n in budgets:
        changed: Counter = Counter()
        for row, row_ids in zip(graded, ids):
            cut = tokenizer.decode(row_ids[:n], skip_special_tokens=True).strip()
            now = grade(row, cut).correct
            if now != row["correct"]:
                changed[f"{group(row)}: {_word(row['correct'])} -> {_word(now)}"] += 1
        same = 1 - sum(changed.values()) / len(graded)
        share = sum(min(c, n) for c in cost) / total
        detail = ", ".join(f"{k} {v}" for k, v in sorted(changed.items())) or "none"
        lines.append(f"{n:>6} {len(graded):>8} {same:>7.4f} {share:>12.3f}  {detail}")
    return lines


def _word(correct: bool) -> str:
    return "pass" if correct else "fail"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaigns", nargs="+", help="DVC experiment names (their -n)")
    parser.add_argument("--tokens", default="16,24,32", help="budgets to cut the answers to")
    parser.add_argument("--tokenizer", default=str(ROOT / "models/r0"), help="(dvc repro prepare)")
    parser.add_argument(
        "--budget", type=int, default=48, help="the answers' evaluate.max_new_tokens"
    )
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    budgets = [int(n) for n in args.tokens.split(",")]
    rows = [
        row
        for campaign in args.campaigns
        for answers in heldout_results(campaign, ROOT).values()
        for row in answers
    ]
    print(f"held-out answers of {', '.join(args.campaigns)}, every round, cut to N tokens:")
    print("\n".join(table(rows, tokenizer, budgets, args.budget)))


if __name__ == "__main__":
    main()
