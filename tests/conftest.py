import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from tiny_model import build_tiny_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

for key, value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def tiny_engine(tiny_model_dir):
    from stages.engine import Engine, EngineParams
    from stages.models import load_checkpoint

    model, tokenizer = load_checkpoint(tiny_model_dir)
    return Engine(model, tokenizer, EngineParams(batch_size=16, dtype="float32"))


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    from prefect_server import PrefectServer

    server = PrefectServer(tmp_path_factory.mktemp("prefect"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
