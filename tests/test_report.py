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


def test_transfer_figures_and_rounds_that_kept_nothing_are_summarised(tmp_path):
    harmful = [0.02, 0.30, 0.30]
    for k, h in enumerate(harmful):
        write(
            tmp_path / f"r{k}.json",
            {
                "heldout": {"accuracy": 0.5, "degenerate": 0.01 * k},
                "transfer": {"labels": {"harmful": h, "benign": 0.9}, "degenerate": 0.0},
            },
        )
    write(tmp_path / "train/r1.json", {"step_scale": 1.0})
    write(tmp_path / "train/r2.json", {"step_scale": 0.0})
    rows = rounds_table(tmp_path, ["r0", "r1", "r2"])
    assert [r["transfer_labels_harmful"] for r in rows] == harmful
    assert rows[2]["degenerate"] == 0.02
    summary = summarize(rows, None)
    assert summary["transfer_labels_harmful"] == {"r0": 0.02, "r1": 0.30, "r2": 0.30}
    assert summary["transfer_labels_harmful_gain"] == pytest.approx(0.28)
    assert summary["transfer_labels_benign_gain"] == 0.0
    assert summary["rounds_kept_nothing"] == 1
    assert "transfer_labels_benign" in to_csv(rows).splitlines()[0]
