import json

import pytest
import torch

from stages.errors import SuperalignError
from stages.models import LearnerParams, load_checkpoint, resolve_model
from stages.prepare import prepare


def test_embedded_model_is_found_in_its_package():
    source = resolve_model("embedded:smollm2-135m-instruct")
    assert source.kind == "embedded" and source.gguf_file.endswith(".gguf")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("embedded:gpt-9", "unknown embedded model 'embedded:gpt-9'"),
        ("./no/such/dir", "is not an embedded model, a local directory or a Hugging Face id"),
        ("not a model!", "is not an embedded model"),
    ],
)
def test_bad_model_values_name_themselves(spec, message):
    with pytest.raises(SuperalignError, match=message):
        resolve_model(spec)


def test_directory_without_config(tmp_path):
    with pytest.raises(SuperalignError, match="without config.json"):
        resolve_model(str(tmp_path))


def test_hub_id_offline_is_one_clear_error(monkeypatch):
    from stages.models import load_base

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SuperalignError, match="cannot load 'nobody/nothing-here'"):
        load_base(LearnerParams(model="nobody/nothing-here"))


def test_prepare_from_local_checkpoint(tiny_model_dir, tmp_path):
    out = tmp_path / "r0"
    facts = prepare(LearnerParams(model=str(tiny_model_dir)), out)
    assert facts["source_kind"] == "local" and facts["parameters"] > 0
    names = {p.name for p in out.iterdir()}
    assert "model.safetensors" in names and not any(n.endswith((".bin", ".pt")) for n in names)
    assert json.loads((out / "superalign.json").read_text())["source"] == str(tiny_model_dir)
    original, _ = load_checkpoint(tiny_model_dir)
    copy, tokenizer = load_checkpoint(out)
    ids = tokenizer("What is 2 + 2?", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(original(ids).logits, copy(ids).logits)
