"""Any round's policy, rebuilt from the base checkpoint and the chain of LoRA adapters.

Only adapters are stored per round (models/rK holds a few MB, not a model copy); round K's
policy is the base with the adapters of r1..rK merged in order, each adapter having been
trained on top of the policy before it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import SuperalignError
from .models import load_checkpoint
from .params import DEFAULT_PARAMS, RoundSpec, load_params, policy_chain


def load_policy(
    round_name: str,
    models_dir: str | Path = "models",
    rounds: dict[str, RoundSpec] | None = None,
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
):
    """(model, tokenizer) for `round_name` ("r0": the base); rounds default to params.yaml."""
    models_dir = Path(models_dir)
    if rounds is None:
        rounds = load_params(DEFAULT_PARAMS)["rounds"] if round_name != "r0" else {}
    model, tokenizer = load_checkpoint(models_dir / "r0", dtype, trust_remote_code)
    for name in policy_chain(rounds, round_name):
        model = merge_adapter(model, models_dir / name)
    return model, tokenizer


def merge_adapter(model, adapter_dir: Path):
    from peft import PeftModel

    if not (adapter_dir / "adapter_config.json").is_file():
        raise SuperalignError(f"{adapter_dir}: no LoRA adapter here; run `dvc repro` first")
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    # PEFT leaves the merged weights frozen; a checkpoint loaded from disk has them
    # trainable. It matters for speed: with the tied embedding / LM head frozen, CPU bf16
    # generation goes through a slower matmul path with a weight copy each step: r1's policy
    # generated 150 vs 300 tokens/s, with bitwise-equal logits and texts
    # (`python bench/engine_throughput.py --model r1 [--frozen]`).
    return merged.requires_grad_(True)
