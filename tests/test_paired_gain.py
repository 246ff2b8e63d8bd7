import importlib.util
import random
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "paired_gain", Path(__file__).resolve().parents[1] / "bench" / "paired_gain.py"
)
paired_gain = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paired_gain)


def test_items_that_did_not_change_add_no_noise():
    same = [True] * 30 + [False] * 50
    assert paired_gain.paired_interval(same, same, random.Random(0)) == (0.0, 0.0, 0.0)


def test_interval_brackets_the_change_and_narrows_with_items():
    rng = random.Random(0)
    widths = []
    for n in (40, 400):
        before = [False] * n
        after = [i % 4 == 0 for i in range(n)]  # a quarter of the items now pass
        change, low, high = paired_gain.paired_interval(before, after, rng)
        assert change == pytest.approx(0.25) and low < 0.25 < high and low > 0
        widths.append(high - low)
    assert widths[1] < widths[0] / 2  # ten times the items: about a third of the width
