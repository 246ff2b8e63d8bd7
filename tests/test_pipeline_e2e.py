"""`dvc repro` of the real dvc.yaml on the tiny profile, in a temporary copy of the repo."""

import json

import pytest
from mlflow.tracking import MlflowClient
from workspace import dvc, make_workspace

pytestmark = pytest.mark.slow


def test_dvc_repro_round0_then_nothing_to_do(tmp_path, tiny_model_dir):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir)
    first = dvc(ws, "repro")
    assert "Running stage 'prepare'" in first.stdout and "Running stage 'baseline'" in first.stdout

    metrics = json.loads((ws / "metrics/r0.json").read_text())
    heldout = metrics["heldout"]
    assert heldout["items"] == 6 and 0 <= heldout["accuracy"] <= 1
    assert 0 <= heldout["format_adherence"] <= 1 and metrics["tokens_per_s"] > 0
    assert (ws / "models/r0/model.safetensors").is_file()
    assert len((ws / "data/rounds/r0/eval.jsonl").read_text().splitlines()) == 6

    client = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("superalign")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert {"prepare@r0", "evaluate@r0", "main", "main/r0"} <= set(runs)
    assert runs["evaluate@r0"].data.metrics["heldout.accuracy"] == heldout["accuracy"]

    second = dvc(ws, "repro")
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout


def test_bad_params_stop_repro_with_one_line(tmp_path, tiny_model_dir):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, {"evaluate": {"limt": 3}})
    proc = dvc(ws, "repro", check=False)
    assert proc.returncode != 0
    assert "error: params: unknown key 'limt' in section 'evaluate'" in proc.stderr
    assert not (ws / "models/r0").exists()
