"""The generation engine every generating stage shares.

Batched, left-padded generation with prompts bucketed by token length, so a batch wastes
little compute on padding; K samples per prompt; seeded; a progress bar; bf16 on CPUs
with native bf16 (it is several times faster there); and the measured throughput comes
back with the texts, because a stage that does not know its tokens/s cannot be tuned.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .params import EngineParams, SamplingParams  # noqa: F401 (re-exported: the engine's knobs)

Conversation = list[dict]  # [{"role": "user", "content": "..."}, ...]

# Used only for tokenizers that ship no chat template (base models).
_FALLBACK_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


@dataclass
class Generations:
    texts: list[list[str]]  # per prompt, its K responses, in input order
    new_tokens: int  # generated tokens up to and including each sequence's end token
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "float32":
        return torch.float32
    if name == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # Measured here (2-core EPYC with avx512_bf16): bf16 generation is several times
    # faster than fp32; without native bf16 it is slower, so stay in fp32.
    return torch.bfloat16 if torch.cpu._is_avx512_bf16_supported() else torch.float32


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Engine:
    """Wraps a causal LM and its tokenizer for batched chat generation."""

    def __init__(self, model, tokenizer, params: EngineParams = EngineParams()):
        self.params = params
        self.device = default_device()
        self.dtype = resolve_dtype(params.dtype, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        # Left padding keeps every prompt's last token at the same position, so one
        # generate call continues all of them.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._end_ids = _end_token_ids(model, tokenizer)
        self.model_id: str | None = None  # set by served engines: the id their server reports

    def render(self, conversation: Conversation) -> str:
        template = None if self.tokenizer.chat_template else _FALLBACK_TEMPLATE
        return self.tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=False, chat_template=template
        )

    @torch.inference_mode()
    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> Generations:
        prompts = [self.render(c) for c in conversations]
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        k = sampling.num_samples
        per_batch = max(1, self.params.batch_size // k)
        # Bucket by length: similar lengths share a batch, so padding stays small.
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        texts: list[list[str]] = [[] for _ in prompts]
        new_tokens = 0
        bar = _progress(len(prompts) * k)
        started = time.perf_counter()
        for batch_no, start in enumerate(range(0, len(order), per_batch)):
            index = order[start : start + per_batch]
            batch = self.tokenizer.pad(
                {"input_ids": [encoded[i] for i in index]}, return_tensors="pt"
            ).to(self.device)
            # A generator per batch, so a run is reproducible for the same inputs and
            # settings whatever else touched torch's global RNG.
            generator = torch.Generator(self.device).manual_seed(sampling.seed + batch_no)
            rows = self._decode(
                batch["input_ids"], batch["attention_mask"], sampling, generator, repeats=k
            )
            new_tokens += sum(len(r) for r in rows)
            decoded = self.tokenizer.batch_decode(
                [[t for t in r if t not in self._end_ids] for r in rows], skip_special_tokens=True
            )
            for row, text in enumerate(decoded):
                texts[index[row // k]].append(text.strip())
            bar.update(len(index) * k)
            elapsed = time.perf_counter() - started
            bar.set_postfix(tok_s=f"{new_tokens / max(elapsed, 1e-9):.0f}")
        bar.close()
        return Generations(texts, new_tokens, time.perf_counter() - started)

    def continuation_probs(
        self, items: Sequence[tuple[Conversation, str]], candidates: Sequence[str]
    ) -> list[list[float] | None]:
        """For each (chat, start of an assistant reply), the next-token probability of each
        candidate, renormalised over the candidates."""
        return self.next_token_probs([self.render(c) + prefix for c, prefix in items], candidates)

    @torch.inference_mode()
    def next_token_probs(
        self, texts: Sequence[str], candidates: Sequence[str]
    ) -> list[list[float]]:
        """For each rendered text, the next-token probability of each candidate,
        renormalised over the candidates (a candidate is scored by its first token)."""
        ids = [self._ids(c)[0] for c in candidates]
        encoded = [self._ids(t) for t in texts]
        out: list[list[float]] = []
        for start in range(0, len(encoded), self.params.batch_size):
            logits, _ = self._last_logits(encoded[start : start + self.params.batch_size], 1)
            probs = torch.softmax(logits[:, -1].float(), dim=-1)[:, ids]
            out += (probs / probs.sum(dim=-1, keepdim=True)).tolist()
        return out

    @torch.inference_mode()
    def continuation_logprobs(self, items: Sequence[tuple[str, str]]) -> list[tuple[float, int]]:
        """For each (rendered text, continuation), the continuation's log-probability
        (summed over its tokens) and its token count. The vocabulary projection runs only
        on the continuations' positions: left padding puts them all at the end."""
        rows = [(self._ids(text), self._ids(continuation)) for text, continuation in items]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]))
        out: list[tuple[float, int]] = [(0.0, 0)] * len(rows)
        for start in range(0, len(order), self.params.batch_size):
            index = order[start : start + self.params.batch_size]
            keep = max(len(rows[i][1]) for i in index) + 1
            if keep == 1:  # only empty continuations: log-probability 0 each
                continue
            logits, input_ids = self._last_logits([rows[i][0] + rows[i][1] for i in index], keep)
            logits = logits[:, :-1].float()
            targets = input_ids[:, 1 - keep :]
            # log-softmax at the targets only: no second vocabulary-sized tensor
            picked = logits.gather(-1, targets[..., None])[..., 0] - logits.logsumexp(-1)
            for row, i in enumerate(index):
                n = len(rows[i][1])
                if n:
                    out[i] = (picked[row, -n:].sum().item(), n)
        return out

    @torch.inference_mode()
    def pooled_hidden(self, items: Sequence[tuple[str, str]], layer: int) -> torch.Tensor:
        """For each (rendered text, continuation), the mean hidden state at `layer` over the
        continuation's tokens, or over the whole text when the continuation is empty:
        (items, hidden size), float32. What a linear probe on the model reads."""
        rows = [(self._ids(text), self._ids(continuation)) for text, continuation in items]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]))
        out = [None] * len(rows)
        for start in range(0, len(order), self.params.batch_size):
            index = order[start : start + self.params.batch_size]
            output, _ = self._forward(
                [rows[i][0] + rows[i][1] for i in index],
                output_hidden_states=True,
                logits_to_keep=1,
            )
            hidden = output.hidden_states[layer]
            for row, i in enumerate(index):
                span = len(rows[i][1]) or len(rows[i][0])  # left padding: the span ends the row
                out[i] = hidden[row, hidden.shape[1] - span :].float().mean(0).cpu()
        return torch.stack(out)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _last_logits(
        self, encoded: list[list[int]], keep: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits of the last `keep` positions, input ids) of one left-padded batch."""
        output, input_ids = self._forward(encoded, logits_to_keep=keep)
        return output.logits, input_ids

    def _forward(self, encoded: list[list[int]], **kwargs):
        """(model output, input ids) of one left-padded batch, positions counted from each
        row's first real token."""
        batch = self.tokenizer.pad({"input_ids": encoded}, return_tensors="pt").to(self.device)
        positions = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        return self.model(**batch, position_ids=positions, **kwargs), batch["input_ids"]

    def _decode(
        self, input_ids, attention_mask, sampling: SamplingParams, generator, repeats: int = 1
    ) -> list[list[int]]:
        """Token ids generated for each prompt row repeated `repeats` times (rows
        `i * repeats ...` continue prompt `i`), up to and including each end token.

        A hand-rolled loop instead of `model.generate` for two reasons. Rows that finish
        leave the batch (and the KV cache) at once: short answers are the norm here, and
        with `generate` every finished row keeps costing a full step until the longest
        one ends; dropping them roughly doubles useful tokens/s (bench/). And the K
        samples of a prompt share one prefill: the prompt is encoded once and its cache
        copied K times, where `generate` would encode it K times.
        """
        model, end = self.model, torch.tensor(self._end_ids, device=self.device)
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        # logits_to_keep=1: the prompt's other positions need no vocabulary projection.
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        cache, logits = out.past_key_values, out.logits[:, -1, :]
        if repeats > 1:
            cache.batch_repeat_interleave(repeats)
            logits = logits.repeat_interleave(repeats, dim=0)
            positions = positions.repeat_interleave(repeats, dim=0)
            attention_mask = attention_mask.repeat_interleave(repeats, dim=0)
        next_position = positions[:, -1:] + 1
        live = torch.arange(logits.shape[0], device=self.device)  # original row of each live row
        rows: list[list[int]] = [[] for _ in range(logits.shape[0])]
        for step in range(sampling.max_new_tokens):
            token = _choose(logits, sampling, generator, self.params.sampler)
            for row, tok in zip(live.tolist(), token.tolist()):
                rows[row].append(tok)
            keep = ~torch.isin(token, end)
            if step == sampling.max_new_tokens - 1 or not keep.any():
                break
            if not keep.all():
                kept = keep.nonzero().squeeze(1)
                cache.batch_select_indices(kept)
                live, attention_mask = live[kept], attention_mask[kept]
                next_position, token = next_position[kept], token[kept]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(live), 1)], 1)
            out = model(
                input_ids=token[:, None],
                attention_mask=attention_mask,
                position_ids=next_position,
                past_key_values=cache,
                use_cache=True,
            )
            logits = out.logits[:, -1, :]
            next_position = next_position + 1
        return rows


def _choose(
    logits: torch.Tensor, sampling: SamplingParams, generator, sampler: str
) -> torch.Tensor:
    """Greedy, or temperature + nucleus (top-p) sampling, one token per row; `sampler` is
    `engine.sampler`."""
    if sampling.temperature == 0:
        # The same index (argmax takes the first of equal maxima, and bf16 -> fp32 is
        # exact) in a third of the time: bf16 argmax over the vocabulary is not vectorised
        # on CPU (5.7 ms vs 1.6 ms for 64 rows here).
        return logits.float().argmax(dim=-1)
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        if sampler == "fast":
            return _draw_among_candidates(probs, sampling.top_p, generator)
        probs = _nucleus(probs, sampling.top_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


# How many of a row's likeliest tokens the nucleus is looked for among before the whole
# vocabulary is sorted or drawn from.
NUCLEUS_CANDIDATES = 1024


def _ranked_nucleus(probs: torch.Tensor, top_p: float, candidates: int):
    """Each row's `candidates` likeliest tokens (probabilities, token ids) and which of
    them fall outside its top-p nucleus (the tokens ranked above already cover top_p);
    the nucleus may reach past the candidates where the last one is not outside."""
    ranked, order = probs.topk(min(candidates, probs.shape[-1]), dim=-1)
    return ranked, order, ranked.cumsum(dim=-1) - ranked > top_p


def _draw_among_candidates(
    probs: torch.Tensor, top_p: float, generator, candidates: int = NUCLEUS_CANDIDATES
) -> torch.Tensor:
    """`engine.sampler: fast`: one token per row from its top-p nucleus (top_p < 1), drawn
    among the row's `candidates` likeliest tokens when the nucleus lies within them.

    `torch.multinomial` draws one exponential variate per vocabulary entry (49k a row, a
    step), and on CPU that draw was 24% of sampling time, the full sorts of `_nucleus`'s
    tied rows another 10% (profiled: 64 prompts x 4 samples). Here a row whose nucleus
    fits in the candidates draws among those alone: the same distribution, other
    variates, so not the samples `exact` gives for a seed. Equally likely tokens at the
    nucleus's edge are kept in `topk`'s order rather than a full sort's. A row whose
    nucleus reaches past the candidates (a flat row) draws from the whole vocabulary's
    nucleus, from the same distribution as `exact`.
    """
    ranked, order, outside = _ranked_nucleus(probs, top_p, candidates)
    if ranked.shape[-1] < probs.shape[-1]:
        beyond = ~outside[:, -1]
    else:  # the candidates are the whole vocabulary
        beyond = torch.zeros_like(outside[:, -1])
    token = torch.empty(probs.shape[0], dtype=torch.long, device=probs.device)
    within = (~beyond).nonzero().squeeze(1)
    if len(within):
        weights = ranked[within].masked_fill(outside[within], 0.0)
        picked = torch.multinomial(weights, 1, generator=generator)
        token[within] = order[within].gather(-1, picked).squeeze(1)
    if beyond.any():
        rows = beyond.nonzero().squeeze(1)
        token[rows] = torch.multinomial(
            _nucleus(probs[rows], top_p), 1, generator=generator
        ).squeeze(1)
    return token


def _nucleus(
    probs: torch.Tensor, top_p: float, candidates: int = NUCLEUS_CANDIDATES
) -> torch.Tensor:
    """`probs` with every token outside the top-p nucleus set to 0: a token is dropped when
    the tokens ranked above it already cover top_p.

    Sorting the whole vocabulary of every row at every step was 30% of sampling time
    (profiled: r1's queries, K=4), so the nucleus is looked for among the `candidates`
    most likely tokens. That gives the very tensor a full sort gives when the row's last
    kept token is more likely than its first dropped one, also ranked among them: the
    nucleus is then every token at least that likely, whatever order ties were ranked
    in. A row where the boundary falls beyond the candidates, or between two equally
    likely tokens (bf16 logits tie often), is sorted in full as before, so which of the
    tied tokens stays is what it always was and seeded samples do not change.
    """
    ranked, order, outside = _ranked_nucleus(probs, top_p, candidates)
    k = ranked.shape[-1]
    kept = (~outside).sum(dim=-1)  # the nucleus is a prefix of the ranking
    last = ranked.gather(-1, (kept - 1).unsqueeze(-1)).squeeze(-1)
    first_dropped = ranked.gather(-1, kept.clamp(max=k - 1).unsqueeze(-1)).squeeze(-1)
    full = (kept >= k) | (last == first_dropped)
    out = _scatter_kept(probs, ranked, order, outside)
    if full.any():
        rows = full.nonzero().squeeze(1)
        ranked, order = probs[rows].sort(dim=-1, descending=True)
        outside = ranked.cumsum(dim=-1) - ranked > top_p
        out[rows] = _scatter_kept(probs[rows], ranked, order, outside)
    return out


def _scatter_kept(probs, ranked, order, outside) -> torch.Tensor:
    """A tensor shaped like `probs` holding the ranked probabilities not `outside`, each
    back at its token's place, and 0 elsewhere."""
    return torch.zeros_like(probs).scatter(-1, order, ranked.masked_fill(outside, 0.0))


def _end_token_ids(model, tokenizer) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _progress(total: int):
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal, silence in DVC/Prefect logs and CI.
    return tqdm(total=total, unit="seq", disable=None, desc="generate", leave=False)
