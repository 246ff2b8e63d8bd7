"""The Prefect flow against a real Prefect server on 127.0.0.1, on the tiny profile."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workspace import env as workspace_env
from workspace import make_workspace

pytestmark = pytest.mark.slow
STAGES = ("attack", "sample", "critique", "revise", "build_prefs", "train", "evaluate")


def superalign(ws: Path, server, *args: str, check=True) -> subprocess.CompletedProcess:
    env = workspace_env(ws) | server.env()
    cmd = [str(Path(sys.executable).parent / "superalign"), *args]
    proc = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def api(server, coroutine_fn):
    """Run an async Prefect client call against the test server."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def go():
        async with get_client() as client:
            return await coroutine_fn(client)

    with temporary_settings({PREFECT_API_URL: server.api_url}):
        return asyncio.run(go())


def test_run_two_rounds_then_nothing_is_stale(tmp_path, tiny_model_dir, prefect_server):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, rounds=0)
    first = superalign(ws, prefect_server, "run", "--rounds", "2", "--campaign", "flowtest")
    assert "r2" in yaml.safe_load((ws / "params.yaml").read_text())["rounds"]
    assert "round" in first.stdout and "r2" in first.stdout  # the status table

    async def runs(client):
        flow_runs = await client.read_flow_runs()
        tasks = await client.read_task_runs()
        artifacts = await client.read_artifacts()
        return flow_runs, tasks, artifacts

    flow_runs, tasks, artifacts = api(prefect_server, runs)
    assert len(flow_runs) == 1 and flow_runs[0].state.is_completed()
    names = {t.name for t in tasks if t.flow_run_id == flow_runs[0].id}
    expected = {"suite", "prepare", "baseline", "report"}
    expected |= {f"{s}@r{k}" for s in STAGES for k in (1, 2)}
    assert names == expected
    assert all(t.state.is_completed() for t in tasks)
    keys = {a.key for a in artifacts}
    assert {"flowtest-r0", "flowtest-r1", "flowtest-r2", "flowtest-r1-summary"} <= keys
    table = next(a for a in artifacts if a.key == "flowtest-r1")
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert any(r["metric"] == "heldout.accuracy" for r in rows)

    assert any(r["stage"] == "sample" and r["metric"] == "tokens_per_s" for r in rows)

    second = superalign(ws, prefect_server, "run", "--campaign", "flowtest")
    # `suite` always runs (it rereads the task's data); it wrote the same, so nothing else did
    assert f"1 stage(s) ran, {len(expected) - 1} up to date" in second.stdout
    flow_runs, tasks, _ = api(prefect_server, runs)
    latest = max(flow_runs, key=lambda r: r.start_time)
    states = {t.name: t.state.name for t in tasks if t.flow_run_id == latest.id}
    assert states == {name: "Skipped" for name in expected - {"suite"}} | {"suite": "Completed"}

    # MLflow names each stage run like DVC and Prefect, and the campaign run leads with
    # the headline metrics.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("superalign")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    stage_runs = client.search_runs(
        [experiment.experiment_id], "tags.`superalign.kind` = 'stage'", max_results=500
    )
    assert {r.info.run_name for r in stage_runs} == expected - {"suite"}  # suite: untracked
    (campaign,) = client.search_runs(
        [experiment.experiment_id], "tags.`superalign.kind` = 'campaign'"
    )
    headline = {k for k in campaign.data.metrics if k.startswith("headline/")}
    assert {"headline/heldout.accuracy", "headline/pairs", "headline/gain"} <= headline
    assert len(headline) < 12 < len(campaign.data.metrics)


def test_second_concurrent_run_fails_clearly(tmp_path, tiny_model_dir, prefect_server):
    import fcntl

    ws = make_workspace(tmp_path / "ws", tiny_model_dir)
    lock = ws / ".dvc/tmp/superalign-run.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("pid 4242")
        held.flush()
        proc = superalign(ws, prefect_server, "run", check=False)
    assert proc.returncode == 2
    assert "another superalign run holds" in proc.stderr and "pid 4242" in proc.stderr
    assert not (ws / "models/r0").exists()


def test_serve_schedules_a_run_that_adds_a_round(tmp_path, tiny_model_dir, prefect_server):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, rounds=0)
    env = workspace_env(ws) | prefect_server.env()
    cmd = [
        str(Path(sys.executable).parent / "superalign"),
        "serve",
        "--interval",
        "1",
        "--name",
        "tick",
    ]
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    serving = subprocess.Popen(
        cmd, cwd=ws, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )

    async def deployment_runs(client):
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

        deployments = await client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["tick"]))
        )
        if not deployments:
            return None, []
        runs = await client.read_flow_runs()
        return deployments[0], [r for r in runs if r.deployment_id == deployments[0].id]

    try:
        deadline, done = time.monotonic() + 400, []
        while time.monotonic() < deadline and not done:
            time.sleep(5)
            assert serving.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            deployment, runs = api(prefect_server, deployment_runs)
            done = [r for r in runs if r.state and r.state.is_completed()]
            failed = [r for r in runs if r.state and r.state.is_failed()]
            assert not failed, (tmp_path / "serve.log").read_text()[-5000:]
        assert deployment is not None and deployment.schedules
        assert done, "no scheduled run completed"
    finally:
        serving.terminate()
        try:
            serving.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # The interval is 1 s, so the next scheduled run may be mid-`dvc repro`, and
            # Prefect's runner lets an in-flight run finish on SIGTERM. Not under test here.
            os.killpg(serving.pid, signal.SIGKILL)  # serve and the run it started
            serving.wait(timeout=30)
        log.close()
    assert "r1" in yaml.safe_load((ws / "params.yaml").read_text())["rounds"]
    assert (ws / "metrics/r1.json").is_file()


def test_ui_starts_both_servers_on_loopback(tmp_path):
    import signal
    import urllib.request

    from prefect_server import free_port, prefect_env

    prefect_port, mlflow_port = free_port(), free_port()
    env = prefect_env(tmp_path) | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    # A campaign's runs in the store the UI will serve, logged the way the stages log them.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from stages.tracking import stage_run\n"
            "with stage_run('evaluate', 'r1', 'camp', run_name='evaluate@r1') as run:\n"
            "    run.log_metrics({'heldout.accuracy': 0.4, 'mean_length_chars': 9.0},"
            " on_campaign=True)\n",
        ],
        env=env,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    cmd = [
        str(Path(sys.executable).parent / "superalign"),
        "ui",
        "--prefect-port",
        str(prefect_port),
        "--mlflow-port",
        str(mlflow_port),
    ]
    log = open(tmp_path / "ui.log", "w")  # noqa: SIM115
    ui = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    urls = [f"http://127.0.0.1:{prefect_port}/api/health", f"http://127.0.0.1:{mlflow_port}/health"]
    try:
        for url in urls:
            deadline = time.monotonic() + 120
            while True:
                assert ui.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        assert response.status == 200
                        break
                except OSError:
                    assert time.monotonic() < deadline, f"{url} never answered"
                    time.sleep(1)
        base = f"http://127.0.0.1:{mlflow_port}/api/2.0/mlflow/experiments/get-by-name"
        with urllib.request.urlopen(f"{base}?experiment_name=superalign", timeout=5) as reply:
            experiment = json.load(reply)["experiment"]
        tags = {t["key"]: t["value"] for t in experiment.get("tags", [])}
        assert tags["mlflow.experimentKind"] == "custom_model_development"  # opens on its runs
        search = urllib.request.Request(
            f"http://127.0.0.1:{mlflow_port}/api/2.0/mlflow/runs/search",
            data=json.dumps({"experiment_ids": [experiment["experiment_id"]]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(search, timeout=5) as reply:
            runs = {r["info"]["run_name"]: r for r in json.load(reply)["runs"]}
        assert set(runs) == {"camp", "camp/r1", "evaluate@r1"}  # nested campaign/round/stage
        metrics = {m["key"]: m["value"] for m in runs["camp"]["data"]["metrics"]}
        assert metrics["headline/heldout.accuracy"] == 0.4
        assert "headline/mean_length_chars" not in metrics
    finally:
        ui.send_signal(signal.SIGTERM)  # what a service manager or `kill` sends
        ui.wait(timeout=60)
        log.close()
    output = (tmp_path / "ui.log").read_text()
    assert f"Prefect UI: http://127.0.0.1:{prefect_port}" in output
    assert f"MLflow UI:  http://127.0.0.1:{mlflow_port}" in output
    exp_id = experiment["experiment_id"]
    assert f"MLflow runs: http://127.0.0.1:{mlflow_port}/#/experiments/{exp_id}/runs" in output
    for url in urls:  # both servers, workers included, went with it
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=2)


def test_work_pool_worker_executes_a_deployment(tmp_path, tiny_model_dir, prefect_server):
    """The Docker/Kubernetes mechanism, with a process pool: deploy, then a worker runs it."""
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, rounds=0)
    env = workspace_env(ws) | prefect_server.env()
    prefect = str(Path(sys.executable).parent / "prefect")

    def run(*cmd, timeout=300):
        proc = subprocess.run(
            cmd, cwd=ws, env=env, capture_output=True, text=True, check=False, timeout=timeout
        )
        assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    run(prefect, "work-pool", "create", "local-pool", "--type", "process")
    deployed = superalign(ws, prefect_server, "deploy", "--pool", "local-pool", "--name", "pooled")
    assert "on pool local-pool" in deployed.stdout
    run(prefect, "deployment", "run", "superalign-rounds/pooled")
    run(prefect, "worker", "start", "--pool", "local-pool", "--run-once", timeout=600)

    async def pooled_runs(client):
        runs = await client.read_flow_runs()
        return [r for r in runs if r.work_pool_name == "local-pool"]

    (flow_run,) = api(prefect_server, pooled_runs)
    assert flow_run.state.is_completed()
    assert (ws / "metrics/r1.json").is_file()  # the run added round 1 and reproduced it
