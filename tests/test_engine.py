import pytest
import torch

from stages.engine import (
    Engine,
    EngineParams,
    SamplingParams,
    _choose,
    _draw_among_candidates,
    _nucleus,
)
from stages.models import load_checkpoint

PROMPTS = ["What is 1 + 1?", "hi", "What is 123 * 45 - 6?", "x", "a much longer prompt " * 4, "7"]


def convs(prompts=PROMPTS):
    return [[{"role": "user", "content": p}] for p in prompts]


def engine(model_dir, batch_size):
    model, tokenizer = load_checkpoint(model_dir)
    return Engine(model, tokenizer, EngineParams(batch_size=batch_size, dtype="float32"))


def test_batched_greedy_equals_one_at_a_time(tiny_model_dir):
    greedy = SamplingParams(max_new_tokens=16)
    batched = engine(tiny_model_dir, batch_size=8).generate(convs(), greedy)
    sequential = engine(tiny_model_dir, batch_size=1).generate(convs(), greedy)
    assert batched.texts == sequential.texts
    assert len({t[0] for t in batched.texts}) > 1  # outputs depend on the prompt
    assert batched.new_tokens == sequential.new_tokens > 0


def test_k_samples_are_seeded_and_ordered(tiny_engine):
    params = SamplingParams(num_samples=3, temperature=1.0, max_new_tokens=8, seed=5)
    first = tiny_engine.generate(convs(), params)
    again = tiny_engine.generate(convs(), params)
    other = tiny_engine.generate(convs(), SamplingParams(**{**params.__dict__, "seed": 6}))
    assert [len(t) for t in first.texts] == [3] * len(PROMPTS)
    assert first.texts == again.texts
    assert first.texts != other.texts
    assert any(len(set(t)) > 1 for t in first.texts)  # samples differ within a prompt


def test_k_samples_share_one_prefill_without_changing_them(tiny_model_dir):
    """Prefill once and copy the cache K times == feed each prompt K times."""
    import torch

    eng = engine(tiny_model_dir, batch_size=8)
    params = SamplingParams(num_samples=3, temperature=1.0, max_new_tokens=8)
    ids = [eng.tokenizer(eng.render(c), add_special_tokens=False)["input_ids"] for c in convs()]
    batch = eng.tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(eng.device)
    shared = eng._decode(
        batch["input_ids"],
        batch["attention_mask"],
        params,
        torch.Generator(eng.device).manual_seed(1),
        3,
    )
    repeated = eng._decode(
        batch["input_ids"].repeat_interleave(3, dim=0),
        batch["attention_mask"].repeat_interleave(3, dim=0),
        params,
        torch.Generator(eng.device).manual_seed(1),
    )
    assert shared == repeated
    assert len(shared) == 3 * len(PROMPTS)


def test_bucketing_keeps_input_order(tiny_engine):
    greedy = SamplingParams(max_new_tokens=6)
    forward = tiny_engine.generate(convs(), greedy).texts
    backward = tiny_engine.generate(convs(PROMPTS[::-1]), greedy).texts
    assert forward == backward[::-1]


def test_throughput_is_measured(tiny_engine):
    out = tiny_engine.generate(convs(), SamplingParams(max_new_tokens=4))
    assert out.new_tokens <= len(PROMPTS) * 4
    assert out.seconds > 0 and out.tokens_per_s > 0


def test_sampling_params_validation():
    with pytest.raises(ValueError, match="temperature > 0"):
        SamplingParams(num_samples=2)
    with pytest.raises(ValueError):
        SamplingParams(max_new_tokens=0)


def test_greedy_matches_transformers_generate(tiny_model_dir):
    """The hand-rolled decode loop (rows leave the batch when done) is plain greedy decoding."""
    import torch

    eng = engine(tiny_model_dir, batch_size=4)
    ours = eng.generate(convs(), SamplingParams(max_new_tokens=12)).texts
    model, tok = eng.model, eng.tokenizer
    for prompt, (text,) in zip(PROMPTS, ours):
        ids = tok(eng.render(convs([prompt])[0]), return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(
                **ids,
                max_new_tokens=12,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tok.pad_token_id,
            )
        assert (
            tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()
            == text
        )


def full_sort_nucleus(probs, top_p):
    """The nucleus as a full sort of the vocabulary finds it (what _nucleus shortcuts)."""
    ranked, order = probs.sort(dim=-1, descending=True)
    outside = ranked.cumsum(dim=-1) - ranked > top_p
    return torch.zeros_like(probs).scatter(-1, order, ranked.masked_fill(outside, 0.0))


def test_nucleus_shortcut_is_the_full_sort_even_with_ties_and_flat_rows():
    generator = torch.Generator().manual_seed(0)
    peaked = torch.randn(96, 4096, generator=generator) * 4
    flat = torch.randn(8, 4096, generator=generator) * 0.01  # nucleus beyond the candidates
    # bf16 logits, as the engine's, make many exactly equal probabilities
    logits = torch.cat([peaked, flat]).to(torch.bfloat16).float()
    probs = torch.softmax(logits / 0.8, dim=-1)
    for top_p in (0.5, 0.9, 0.95):
        fast = _nucleus(probs, top_p, candidates=256)
        assert torch.equal(fast, full_sort_nucleus(probs, top_p))
        kept = (fast > 0).sum(dim=-1)
        assert kept[-8:].min() > 256 and kept[:96].max() < 256  # both paths were taken


def test_fast_sampler_draws_from_the_same_nucleus_distribution():
    """`engine.sampler: fast` draws among the candidates where the nucleus fits in them,
    as the whole vocabulary otherwise; either way only nucleus tokens, at their
    renormalised probabilities, seeded."""
    generator = torch.Generator().manual_seed(0)
    peaked = torch.randn(1, 512, generator=generator) * 3
    flat = torch.randn(1, 512, generator=generator) * 0.01  # nucleus beyond the candidates
    probs = torch.softmax(torch.cat([peaked, flat]), dim=-1)
    draws = 20000
    rows = probs.repeat_interleave(draws, dim=0)
    for top_p in (0.5, 0.9):
        nucleus = full_sort_nucleus(probs, top_p)
        assert (nucleus[0] > 0).sum() < 32 < (nucleus[1] > 0).sum()  # both paths
        tokens = _draw_among_candidates(rows, top_p, torch.Generator().manual_seed(1), 32)
        assert torch.equal(
            tokens, _draw_among_candidates(rows, top_p, torch.Generator().manual_seed(1), 32)
        )
        for row in (0, 1):
            drawn = tokens[row * draws : (row + 1) * draws]
            assert bool((nucleus[row, drawn] > 0).all())  # never outside the nucleus
            expected = nucleus[row] / nucleus[row].sum()
            seen = torch.bincount(drawn, minlength=512).float() / draws
            assert (seen - expected).abs().max() < 0.02
        # the flat row's nucleus is wider than the candidates: it drew past them
        assert len(set(tokens[draws:].tolist())) > 32


def test_fast_sampler_generates_seeded_samples_other_than_exacts(tiny_model_dir):
    model, tokenizer = load_checkpoint(tiny_model_dir)
    fast = Engine(model, tokenizer, EngineParams(dtype="float32", sampler="fast"))
    exact = Engine(model, tokenizer, EngineParams(dtype="float32"))
    sampled = SamplingParams(num_samples=3, temperature=1.0, top_p=0.9, max_new_tokens=8)
    first = fast.generate(convs(), sampled)
    assert first.texts == fast.generate(convs(), sampled).texts
    assert any(len(set(t)) > 1 for t in first.texts)
    assert first.texts != exact.generate(convs(), sampled).texts  # other variates


def test_greedy_takes_the_first_of_tied_maxima_in_bf16():
    logits = torch.zeros(3, 300, dtype=torch.bfloat16)
    logits[0, [7, 200]] = 2.0
    logits[1, [5, 6, 299]] = 1.0
    logits[2, 299] = 0.5
    greedy = SamplingParams(max_new_tokens=1)
    assert _choose(logits, greedy, None, "exact").tolist() == [7, 5, 299]
