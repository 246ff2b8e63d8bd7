import importlib.util
import json
import random
from pathlib import Path

import pytest

from stages.errors import SuperalignError

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


def test_a_workspace_directory_is_read_for_a_campaign_run_elsewhere(tmp_path):
    # a campaign run on another machine: only its data/rounds came back, no DVC experiment
    for name, correct in (("r0", [False, False, True]), ("r2", [True, False, True])):
        rows = [
            {"id": f"q{i}", "set": "heldout", "label": "harmful", "correct": c}
            for i, c in enumerate(correct)
        ] + [{"id": "b", "set": "benchmark", "label": "harmful", "correct": True}]
        path = tmp_path / "data" / "rounds" / name / "eval.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rounds = paired_gain.heldout_outcomes(str(tmp_path))
    assert list(rounds) == ["r0", "r2"] and len(rounds["r2"]) == 3  # held-out rows only
    assert "+33.3" in paired_gain.table(str(tmp_path))
    (tmp_path / "data" / "rounds" / "r0" / "eval.jsonl").unlink()
    (tmp_path / "data" / "rounds" / "r2" / "eval.jsonl").unlink()
    with pytest.raises(SuperalignError, match="no rK/eval.jsonl"):
        paired_gain.heldout_outcomes(str(tmp_path))
