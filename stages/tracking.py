"""MLflow wiring, kept out of stage logic: a stage's main opens one `stage_run` and logs.

Runs nest campaign -> round -> stage. Each DVC stage is its own process, so the parents
are found by tags (or created) instead of being held open; metrics go in with
step = round number, and evaluation metrics are also logged on the campaign run so the
MLflow UI charts them across rounds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator
from typing import Any

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
KIND_TAG = "superalign.kind"  # campaign | round | stage
CAMPAIGN_TAG = "superalign.campaign"
ROUND_TAG = "superalign.round"
FLOW_RUN_TAG = "prefect.flow_run_id"
# MLflow 3's UI opens an experiment without this tag on its GenAI overview ("Traces 0"),
# with the runs behind a toggle; a model-training experiment opens on its runs.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
# What the campaign run shows first: a few metrics under `headline/`, a section of their
# own in MLflow's charts, ahead of the hundred `<stage>.<metric>` ones logged beside them.
# (stage, metric key prefix): every metric of that stage whose key starts with it.
HEADLINE = (
    ("evaluate", "heldout.accuracy"),
    ("evaluate", "heldout.suites."),
    ("evaluate", "transfer.labels."),
    ("evaluate", "heldout.degenerate"),
    ("critique", "agreement_with_gold"),
    ("critique", "kappa_with_gold"),
    ("critique", "agreement_with_human"),
    ("build_prefs", "pairs"),
    ("report", "gain"),
    ("report", "pgr"),
)


def quiet_telemetry() -> None:
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def round_number(round_name: str) -> int:
    match = re.fullmatch(r"r(\d+)", round_name)
    if not match:
        raise ValueError(f"round names look like r0, r1, ...; got {round_name!r}")
    return int(match.group(1))


def campaign_name(default: str) -> str:
    """The campaign a run belongs to: set by the orchestrator, a DVC experiment, or params."""
    return os.environ.get("SUPERALIGN_CAMPAIGN") or os.environ.get("DVC_EXP_NAME") or default


def flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    """Dataclasses and dicts to `section.key` -> string, the shape MLflow params take."""
    if dataclasses.is_dataclass(obj):
        obj = dataclasses.asdict(obj)
    if isinstance(obj, dict):
        out: dict[str, str] = {}
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): str(obj)[:500]}


class StageRun:
    """Logs one stage of one round; created by `stage_run`."""

    def __init__(self, client, run_id: str, campaign_run_id: str, step: int, stage: str):
        self._client, self.run_id, self.stage = client, run_id, stage
        self._campaign_run_id, self._step = campaign_run_id, step

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flatten(params).items()]
        for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            self._client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: dict[str, float], on_campaign: bool = False) -> None:
        """Log numeric metrics at step = round.

        `on_campaign` also logs them on the campaign run as `<stage>.<key>`, where the
        MLflow UI charts one line per metric across rounds.
        """
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [
            Metric(_metric_key(k), float(v), now, self._step)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        runs = {self.run_id: batch}
        if on_campaign:
            runs[self._campaign_run_id] = [
                Metric(f"{self.stage}.{m.key}", m.value, m.timestamp, m.step) for m in batch
            ] + [
                Metric(f"headline/{m.key}", m.value, m.timestamp, m.step)
                for m in batch
                if is_headline(self.stage, m.key)
            ]
        for run_id, items in runs.items():
            for start in range(0, len(items), 1000):
                self._client.log_batch(run_id, metrics=items[start : start + 1000])

    def log_text(self, text: str, name: str) -> None:
        self._client.log_text(self.run_id, text, name)


def is_headline(stage: str, key: str) -> bool:
    """Per-bucket shares of the held-out suites stay out: a headline is a handful."""
    return any(
        stage == s and key.startswith(prefix) and ".buckets." not in key for s, prefix in HEADLINE
    )


@contextlib.contextmanager
def stage_run(
    stage: str, round_name: str, campaign: str, run_name: str | None = None
) -> Iterator[StageRun]:
    """Open the MLflow run of a stage under its round and campaign runs. `run_name` is the
    stage's name in dvc.yaml and Prefect (`critique@r2`, `baseline`), default `stage@round`.

    A run of the same stage, round and campaign still RUNNING is what a killed process
    leaves (kill -9 skips every `finally`): it is marked KILLED first."""
    quiet_telemetry()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
    experiment_id = _experiment_id(client, os.environ.get("SUPERALIGN_EXPERIMENT", "superalign"))
    campaign_id = _find_or_create(
        client, experiment_id, campaign, {KIND_TAG: "campaign", CAMPAIGN_TAG: campaign}
    )
    round_id = _find_or_create(
        client,
        experiment_id,
        f"{campaign}/{round_name}",
        {KIND_TAG: "round", CAMPAIGN_TAG: campaign, ROUND_TAG: round_name},
        parent=campaign_id,
    )
    tags = {
        KIND_TAG: "stage",
        CAMPAIGN_TAG: campaign,
        ROUND_TAG: round_name,
        "superalign.stage": stage,
    }
    _mark_abandoned(client, experiment_id, tags)
    tags |= {"mlflow.runName": run_name or f"{stage}@{round_name}", "mlflow.parentRunId": round_id}
    flow_run_id = os.environ.get("SUPERALIGN_FLOW_RUN_ID")
    if flow_run_id:  # started by the Prefect flow: link the MLflow run to that flow run
        tags[FLOW_RUN_TAG] = flow_run_id
        client.set_tag(campaign_id, FLOW_RUN_TAG, flow_run_id)
    run = client.create_run(experiment_id, tags=tags)
    status = "FAILED"
    try:
        yield StageRun(client, run.info.run_id, campaign_id, round_number(round_name), stage)
        status = "FINISHED"
    finally:
        client.set_terminated(run.info.run_id, status)


def experiment_id(tracking_uri: str) -> str:
    """The project's MLflow experiment in that store, created (and tagged) if new."""
    quiet_telemetry()
    from mlflow.tracking import MlflowClient

    name = os.environ.get("SUPERALIGN_EXPERIMENT", "superalign")
    return _experiment_id(MlflowClient(tracking_uri=tracking_uri), name)


def _experiment_id(client, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return client.create_experiment(name, tags=EXPERIMENT_TAGS)
    for key, value in EXPERIMENT_TAGS.items():  # stores made before the tag existed
        if experiment.tags.get(key) != value:
            client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def _mark_abandoned(client, experiment_id: str, tags: dict) -> int:
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    stale = client.search_runs(
        [experiment_id], filter_string=f"{query} and attributes.status = 'RUNNING'"
    )
    for run in stale:
        client.set_tag(run.info.run_id, "superalign.note", "its process ended without closing it")
        client.set_terminated(run.info.run_id, "KILLED")
    return len(stale)


def _find_or_create(client, experiment_id, name, tags, parent: str | None = None) -> str:
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    found = client.search_runs([experiment_id], filter_string=query, max_results=1)
    if found:
        return found[0].info.run_id
    all_tags = tags | {"mlflow.runName": name}
    if parent:
        all_tags["mlflow.parentRunId"] = parent
    run = client.create_run(experiment_id, tags=all_tags)
    # A parent is a grouping, not a process; mark it finished so the UI shows no
    # forever-running run. Children can still be added to it.
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def _metric_key(key: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", key)
