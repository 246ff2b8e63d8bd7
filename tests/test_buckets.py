import json

from typer.testing import CliRunner

from pipeline.buckets import bucket_rows, read_buckets, with_change, write_buckets
from pipeline.cli import app

runner = CliRunner()


def mixture(harmful_area: float, history: float, arithmetic: float) -> dict:
    """metrics/rK.json of a safety + arithmetic mixture, as evaluate writes it."""
    safety = {"buckets": {"dna_malicious_uses": harmful_area, "historical_events": history}}
    return {
        "heldout": {
            "accuracy": 0.5,
            "buckets": {"dna_malicious_uses": harmful_area, "d1_add_s1": arithmetic},
            "suites": {"safety": safety, "arithmetic": {"buckets": {"d1_add_s1": arithmetic}}},
        }
    }


def test_rows_follow_each_bucket_of_each_suite_across_rounds(tmp_path):
    rows = bucket_rows({"r0": mixture(0.25, 1.0, 0.7), "r1": mixture(0.5, 0.0, 0.8)})
    by_bucket = {(r["suite"], r["bucket"]): r for r in rows}
    assert set(by_bucket) == {
        ("safety", "dna_malicious_uses"),
        ("safety", "historical_events"),
        ("arithmetic", "d1_add_s1"),
    }
    history = with_change([by_bucket[("safety", "historical_events")]])[0]
    assert (history["r0"], history["r1"], history["change"]) == (1.0, 0.0, -1.0)

    single = bucket_rows({"r0": {"heldout": {"buckets": {"d1_add_s1": 0.7}}}})
    assert single == [{"suite": None, "bucket": "d1_add_s1", "r0": 0.7}]
    assert with_change(single)[0]["change"] is None  # one round: nothing to compare

    path = tmp_path / "buckets.csv"
    write_buckets(rows, path)
    assert read_buckets(path) == rows
    assert not list(tmp_path.glob("*.tmp*"))  # written atomically, nothing left beside it


def test_buckets_command_shows_where_a_campaign_gave_way(tmp_path):
    for k, metrics in enumerate([mixture(0.25, 1.0, 0.7), mixture(0.5, 0.0, 0.8)]):
        (tmp_path / f"r{k}.json").write_text(json.dumps(metrics))
    result = runner.invoke(app, ["buckets", "--metrics-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "historical_events" in x)
    assert line.split() == ["safety", "historical_events", "1.000", "0.000", "-1.000"]

    single = tmp_path / "single"
    single.mkdir()
    (single / "r0.json").write_text(json.dumps({"heldout": {"buckets": {"d1_add_s1": 0.7}}}))
    result = runner.invoke(app, ["buckets", "--metrics-dir", str(single)])
    assert result.output.splitlines()[0].split() == ["bucket", "r0", "change"]


def test_unknown_campaign_is_a_one_line_error(tmp_path, monkeypatch):
    from workspace import run

    run(["git", "init", "-q"], tmp_path)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["buckets", "nope"])
    assert result.exit_code == 2  # as every superalign error
    assert "no DVC experiment named 'nope'" in result.output
    assert "Traceback" not in result.output
