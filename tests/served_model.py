"""A real `transformers serve` process on 127.0.0.1 for the tests: started, awaited,
stopped (and restartable on the same port, to test a server that goes away)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prefect_server import free_port, stop_process


class ServedModel:
    def __init__(self, model_dir: Path, log_dir: Path, port: int | None = None):
        self.model_dir, self.log_dir = Path(model_dir), Path(log_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.spec = f"openai:{self.model_dir}@{self.url}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> ServedModel:
        log = open(self.log_dir / f"serve-{self.port}.log", "a")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "transformers"),
                "serve",
                str(self.model_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--device",
                "cpu",
            ],
            env=os.environ | {"HF_HUB_OFFLINE": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as reply:
                    if json.load(reply)["data"]:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"transformers serve did not come up: {self.log_text()[-3000:]}")

    def requests_served(self) -> int:
        return self.log_text().count('"POST /v1/chat/completions')

    def log_text(self) -> str:
        path = self.log_dir / f"serve-{self.port}.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, timeout=20)
        self.proc = None
