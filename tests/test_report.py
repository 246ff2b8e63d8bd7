import json

import pytest

from stages.errors import SuperalignError
from stages.report import rounds_table, summarize, to_csv


def write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_table_gain_and_pgr(tmp_path):
    for k, acc in enumerate([0.25, 0.30, 0.40]):
        write(tmp_path / f"r{k}.json", {"heldout": {"accuracy": acc}, "tokens_per_s": 100})
    write(tmp_path / "critique/r1.json", {"agreement_with_gold": 0.7})
    write(tmp_path / "build_prefs/r2.json", {"pairs": 50})
    rows = rounds_table(tmp_path, ["r0", "r1", "r2"])
    assert [r["heldout_accuracy"] for r in rows] == [0.25, 0.30, 0.40]
    assert rows[1]["critic_agreement_with_gold"] == 0.7 and rows[2]["pairs"] == 50
    assert rows[0]["pairs"] is None
    summary = summarize(rows, ceiling_gain=0.30)
    assert summary["gain"] == pytest.approx(0.15) and summary["pgr"] == pytest.approx(0.5)
    assert summary["monotonic"] is True
    assert summarize(rows, None)["pgr"] is None
    csv = to_csv(rows).splitlines()
    assert csv[0].startswith("round,round_number,heldout_accuracy") and len(csv) == 4


def test_missing_round_is_reported(tmp_path):
    write(tmp_path / "r0.json", {"heldout": {"accuracy": 0.1}})
    with pytest.raises(SuperalignError, match="r1.json is missing"):
        rounds_table(tmp_path, ["r0", "r1"])


def test_ceiling_gain_is_read_from_the_ceiling_campaigns_report(mlflow_uri):
    from stages.report import ceiling_gain_from_mlflow
    from stages.tracking import stage_run

    assert ceiling_gain_from_mlflow("verifier") is None
    with stage_run("report", "r3", "verifier") as run:
        run.log_metrics({"gain": 0.3}, on_campaign=True)
    assert ceiling_gain_from_mlflow("verifier") == pytest.approx(0.3)
