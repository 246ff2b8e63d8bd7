import platform

import pytest
import torch

from stages.models import load_checkpoint
from stages.runtime import keep_freed_memory, score_completions_only


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is a glibc interface")
def test_malloc_keeps_freed_blocks_on_glibc():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # idempotent: cached, safe to call from every stage


def test_fused_lm_head_projects_only_labelled_positions_on_cpu(tiny_model_dir, monkeypatch):
    import trl.trainer.utils as trl_utils

    model, _ = load_checkpoint(tiny_model_dir)
    ids = torch.randint(
        0, model.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(0)
    )
    labels = ids.masked_fill(torch.arange(10) < 6, -100)  # a 6-token prompt, 4 labelled tokens
    with torch.no_grad():
        logits = model(ids).logits[:, :-1].float()
    expected = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]

    projected_rows = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counting_apply(hidden, *args):
        projected_rows.append(hidden.shape[0])
        return apply(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", staticmethod(counting_apply))
    trl_utils.add_fused_lm_head(model)
    assert score_completions_only() is True
    with torch.no_grad():
        log_probs = model(input_ids=ids, labels=labels, fused_lm_head=True).log_probs
    assert projected_rows == [2 * 4]  # not 2 x 9: no prompt position goes through the head
    labelled = labels[:, 1:] != -100
    assert torch.allclose(log_probs[labelled], expected[labelled], atol=1e-5)
    assert (log_probs[~labelled] == 0).all()
