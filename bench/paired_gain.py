"""How sure a campaign's held-out change is: each group's change from r0 to the last round,
with a 95% interval from a paired bootstrap over the held-out items. No model runs.

    python bench/paired_gain.py rules-strict                 # a DVC experiment (its -n name)
    python bench/paired_gain.py rules-strict beta5-strict    # several, one table each
    python bench/paired_gain.py rules-strict --round r2      # r0 -> r2 instead of the last

The groups are the held-out set's labels (harmful: safe response, benign: answered) and
"other", the unlabelled rest (a mixed-in suite's items: arithmetic in the safety
profile). Both rounds answer the same items, so the bootstrap resamples items and keeps
each item's pair of outcomes together: an item both rounds got right adds no noise,
which an interval from two independent rates would count. The interval is the held-out
sample's noise only; a rerun with other seeds moves a campaign by more (README, Safety).
The answers are baseline's and evaluate@rK's eval.jsonl, read from DVC's cache by the
experiment's dvc.lock.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.profiles import heldout_results  # noqa: E402

RESAMPLES = 10_000
SEED = 0


def heldout_outcomes(campaign: str) -> dict[str, dict[str, tuple[str, bool]]]:
    """Round -> held-out item id -> (its group, answered correctly)."""
    return {
        name: {r["id"]: (r.get("label") or "other", bool(r["correct"])) for r in rows}
        for name, rows in heldout_results(campaign, ROOT).items()
    }


def paired_interval(
    before: list[bool], after: list[bool], rng: random.Random
) -> tuple[float, float, float]:
    """(change in rate, 2.5th and 97.5th percentile of its bootstrap distribution)."""
    deltas = [int(a) - int(b) for b, a in zip(before, after)]
    n = len(deltas)
    means = sorted(sum(rng.choices(deltas, k=n)) / n for _ in range(RESAMPLES))
    return sum(deltas) / n, means[int(0.025 * RESAMPLES)], means[int(0.975 * RESAMPLES) - 1]


def table(campaign: str, last: str | None = None) -> str:
    rounds = heldout_outcomes(campaign)
    last = last or list(rounds)[-1]  # rounds come in order
    first, final = rounds["r0"], rounds[last]
    shared = sorted(set(first) & set(final))
    rng = random.Random(SEED)
    lines = [
        f"campaign {campaign}: held-out change r0 -> {last}, 95% paired bootstrap interval",
        "group        items  r0      " + f"{last:<8}change (points)   interval",
    ]
    for group in sorted({first[i][0] for i in shared}):
        ids = [i for i in shared if first[i][0] == group]
        before = [first[i][1] for i in ids]
        after = [final[i][1] for i in ids]
        change, low, high = paired_interval(before, after, rng)
        lines.append(
            f"{group:<12} {len(ids):>5}  {sum(before) / len(ids):.3f}   "
            f"{sum(after) / len(ids):.3f}   {100 * change:+6.1f}            "
            f"[{100 * low:+.1f}, {100 * high:+.1f}]"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("campaigns", nargs="+")
    parser.add_argument("--round", help="compare r0 with this round (default: the last)")
    args = parser.parse_args()
    print("\n\n".join(table(c, args.round) for c in args.campaigns))


if __name__ == "__main__":
    main()
