import pytest
from mlflow.tracking import MlflowClient

from stages.tracking import campaign_name, flatten, stage_run


def test_runs_nest_campaign_round_stage(mlflow_uri):
    with stage_run("evaluate", "r2", "camp") as run:
        run.log_params({"evaluate": {"limit": 3}})
        run.log_metrics(
            {"heldout.accuracy": 0.5, "bad+name": 1.0, "skip": "text"}, on_campaign=True
        )
    with stage_run("sample", "r2", "camp"):
        pass
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("superalign").experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    assert set(by_name) == {"camp", "camp/r2", "evaluate@r2", "sample@r2"}  # parents reused
    stage, round_run, campaign = by_name["evaluate@r2"], by_name["camp/r2"], by_name["camp"]
    assert stage.data.tags["mlflow.parentRunId"] == round_run.info.run_id
    assert round_run.data.tags["mlflow.parentRunId"] == campaign.info.run_id
    assert stage.data.params == {"evaluate.limit": "3"}
    history = client.get_metric_history(campaign.info.run_id, "evaluate.heldout.accuracy")
    assert [(m.step, m.value) for m in history] == [(2, 0.5)]
    assert "bad_name" in stage.data.metrics and "skip" not in stage.data.metrics
    assert stage.info.status == "FINISHED"


def test_runs_started_by_the_flow_carry_its_id(mlflow_uri, monkeypatch):
    monkeypatch.setenv("SUPERALIGN_FLOW_RUN_ID", "flow-123")
    with stage_run("sample", "r1", "camp") as run:
        run_id = run.run_id
    client = MlflowClient(mlflow_uri)
    assert client.get_run(run_id).data.tags["prefect.flow_run_id"] == "flow-123"
    (campaign,) = client.search_runs(
        [client.get_experiment_by_name("superalign").experiment_id],
        filter_string="tags.`superalign.kind` = 'campaign'",
    )
    assert campaign.data.tags["prefect.flow_run_id"] == "flow-123"


def test_failed_stage_is_marked_failed(mlflow_uri):
    with pytest.raises(RuntimeError):
        with stage_run("train", "r1", "camp"):
            raise RuntimeError("boom")
    client = MlflowClient(mlflow_uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("superalign").experiment_id],
        filter_string="tags.`superalign.kind` = 'stage'",
    )
    assert run.info.status == "FAILED"


def test_campaign_name_precedence(monkeypatch):
    monkeypatch.delenv("SUPERALIGN_CAMPAIGN", raising=False)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    assert campaign_name("main") == "main"
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    assert campaign_name("main") == "exp-1"
    monkeypatch.setenv("SUPERALIGN_CAMPAIGN", "weekly")
    assert campaign_name("main") == "weekly"


def test_flatten():
    assert flatten({"a": {"b": 1, "c": [1, 2]}}) == {"a.b": "1", "a.c": "[1, 2]"}


def test_a_run_left_running_by_a_killed_stage_is_marked_killed(mlflow_uri, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import time\n"
        "from stages.tracking import stage_run\n"
        "with stage_run('train', 'r3', 'camp') as run:\n"
        "    print(run.run_id, flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"MLFLOW_TRACKING_URI": mlflow_uri},
    )
    killed_id = proc.stdout.readline().strip()
    client = MlflowClient(mlflow_uri)
    assert client.get_run(killed_id).info.status == "RUNNING"
    proc.send_signal(signal.SIGKILL)  # no `finally` runs: MLflow would say RUNNING forever
    proc.wait()
    time.sleep(0.1)
    with stage_run("train", "r2", "camp"):  # another round's stage leaves it alone
        pass
    assert client.get_run(killed_id).info.status == "RUNNING"
    with stage_run("train", "r3", "camp") as rerun:
        assert client.get_run(killed_id).info.status == "KILLED"
    assert client.get_run(rerun.run_id).info.status == "FINISHED"
    assert "ended without closing" in client.get_run(killed_id).data.tags["superalign.note"]


def test_headline_metrics_lead_on_the_campaign_run(mlflow_uri):
    with stage_run("evaluate", "r1", "camp", run_name="evaluate@r1") as run:
        run.log_metrics(
            {
                "heldout.accuracy": 0.4,
                "heldout.suites.safety.labels.harmful": 0.5,
                "heldout.suites.safety.buckets.violence": 0.1,
                "mean_length_chars": 80.0,
            },
            on_campaign=True,
        )
    with stage_run("evaluate", "r0", "camp", run_name="baseline"):
        pass
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("superalign")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert "baseline" in runs and "evaluate@r1" in runs
    headline = {k for k in runs["camp"].data.metrics if k.startswith("headline/")}
    assert headline == {
        "headline/heldout.accuracy",
        "headline/heldout.suites.safety.labels.harmful",
    }
    assert "evaluate.mean_length_chars" in runs["camp"].data.metrics
