"""The machine a campaign ran on, saved beside its figures (reports/campaigns/<name>/).

Round times are the machine's: the same profile runs several times slower where the CPU
lacks native bf16, because the engine then generates in fp32 (README, Speed)."""

from __future__ import annotations

import os
import platform


def machine() -> dict:
    import torch

    from stages.engine import default_device, resolve_dtype

    device = default_device()
    facts = {
        "device": device.type,
        "cpu": _cpu_model() or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "generation_dtype": str(resolve_dtype("auto", device)).removeprefix("torch."),
    }
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
