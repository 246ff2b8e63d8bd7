"""Models behind an OpenAI-compatible chat endpoint: vLLM, SGLang, llama.cpp's server,
`transformers serve`, or a hosted API.

`openai:MODEL@URL` wherever params name a model (`attack.attacker_model`,
`critique.judge_model`) selects a `ServedEngine`, which generates like the local `Engine`
(`generate(chats, sampling)`) through the official `openai` client:

- bounded concurrency (`served.concurrency` requests in flight), a per-request timeout,
  and the client's retries with exponential backoff on 429, 5xx, timeouts and refused
  connections (`served.max_retries`); when they run out, one line says what failed;
- a request cache: each completed reply is stored under the hash of the request's content
  (model, messages, sampling, sample index) as soon as it arrives, so a stage killed
  halfway and rerun sends only the requests that had not finished. A reply is reused only
  for the identical request, so the cache changes no result;
- K samples per prompt with `n=K`; a server that ignores `n` (transformers serve) returns
  one choice, and the others are sent as separate requests with their own seeds;
- token log-probabilities when the server gives them (vLLM): a judge reads its score
  token's probability from them; without them its confidence is unknown (None), never
  made up.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .engine import Conversation, Engine, Generations
from .errors import SuperalignError
from .models import LearnerParams, load_base, load_checkpoint
from .params import EngineParams, SamplingParams, ServedParams
from .records import write_json

SERVED_PREFIX = "openai:"
EXAMPLE = "openai:MODEL@http://127.0.0.1:8000/v1"
TOP_LOGPROBS = 20  # alternatives per generated token, when the server gives log-probs


@dataclass(frozen=True)
class Endpoint:
    model: str
    base_url: str

    def __str__(self) -> str:
        return f"{SERVED_PREFIX}{self.model}@{self.base_url}"


def is_served(spec: str | None) -> bool:
    return bool(spec) and spec.strip().startswith(SERVED_PREFIX)


def parse_endpoint(spec: str, where: str) -> Endpoint:
    """`openai:MODEL@URL` -> Endpoint; anything else is a one-line error naming `where`."""
    model, at, url = spec.strip().removeprefix(SERVED_PREFIX).rpartition("@")
    if not at or not model or not url:
        raise SuperalignError(f"{where}: '{spec}' is not an endpoint like {EXAMPLE}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SuperalignError(
            f"{where}: '{url}' in '{spec}' is not an http(s) URL (like {EXAMPLE}); "
            "an API key goes in the environment variable named by served.api_key_env"
        )
    return Endpoint(model, url.rstrip("/"))


def api_key(params: ServedParams, endpoint: Endpoint) -> str:
    if params.api_key_env is None:
        return "unused"  # local servers take any key; the client insists on one
    key = os.environ.get(params.api_key_env, "")
    if not key:
        raise SuperalignError(
            f"served.api_key_env: the environment variable {params.api_key_env} is not set "
            f"(it should hold the API key for {endpoint.base_url})"
        )
    return key


class RequestCache:
    """Completed replies on disk, one JSON file per request, keyed by the request's content."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def key(request: dict) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def put(self, key: str, reply: dict) -> None:
        write_json(self._path(key), reply)  # atomic: a killed stage leaves no half reply

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.is_dir() else 0


class ServedEngine:
    """Chat generation through an OpenAI-compatible endpoint, shaped like `Engine`."""

    def __init__(self, endpoint: Endpoint, params: ServedParams, logprobs: bool = False):
        from openai import OpenAI

        self.endpoint, self.params, self.logprobs = endpoint, params, logprobs
        self.client = OpenAI(
            base_url=endpoint.base_url,
            api_key=api_key(params, endpoint),
            timeout=params.timeout_s,
            max_retries=params.max_retries,
        )
        self.cache = RequestCache(params.cache_dir)
        self.model_id: str | None = None  # the model id the server reports in its replies
        self.requests_sent = 0
        self._lock = threading.Lock()
        # chat -> its replies' tokens with their top log-probs, for judges
        self._tokens: dict[str, list[list]] = {}

    def check(self) -> ServedEngine:
        """At stage start: the server answers and serves the model, or a one-line error."""
        import openai

        try:
            served = [m.id for m in self.client.with_options(max_retries=1).models.list()]
        except openai.NotFoundError:
            return self  # no /models on this server: an unknown model shows on first request
        except openai.APIError as exc:
            raise self._error(exc) from None
        if self.endpoint.model not in served:
            raise SuperalignError(
                f"{self.endpoint}: the server has no model '{self.endpoint.model}' "
                f"(it serves: {', '.join(served[:10]) or 'nothing'})"
            )
        return self

    def generate(
        self, conversations: Sequence[Conversation], sampling: SamplingParams
    ) -> Generations:
        started = time.perf_counter()
        texts: list[list[str]] = [[] for _ in conversations]
        new_tokens = 0
        pool = ThreadPoolExecutor(max_workers=self.params.concurrency)
        try:
            futures = {
                pool.submit(self._samples, chat, sampling): i
                for i, chat in enumerate(conversations)
            }
            for future in as_completed(futures):
                texts[futures[future]], tokens = future.result()
                new_tokens += tokens
        finally:
            # On the first failure, requests not yet sent are dropped; the finished ones
            # are in the cache already.
            pool.shutdown(wait=True, cancel_futures=True)
        return Generations(texts, new_tokens, time.perf_counter() - started)

    def continuation_probs(
        self, items: Sequence[tuple[Conversation, str]], candidates: Sequence[str]
    ) -> list[list[float] | None]:
        """Like `Engine.continuation_probs`, but only for a prefix of a reply this engine
        generated with log-probs, ending on a token boundary; otherwise None (unknown)."""
        return [self._probs_after(chat, prefix, candidates) for chat, prefix in items]

    def _probs_after(self, chat, prefix: str, candidates) -> list[float] | None:
        for tokens in self._tokens.get(_chat_key(chat), ()):
            seen = ""
            for token, top in tokens:
                if seen.lstrip() == prefix:  # replies are stripped, as the local engine's
                    found = [math.exp(top[c]) if c in top else 0.0 for c in candidates]
                    total = sum(found)
                    return [p / total for p in found] if total > 0 else None
                seen += token
                if len(seen.lstrip()) > len(prefix):
                    break
        return None

    def _samples(self, chat: Conversation, sampling: SamplingParams) -> tuple[list[str], int]:
        k = sampling.num_samples
        request = {
            "model": self.endpoint.model,
            "messages": chat,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
        }
        if self.logprobs:
            request |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        first = self._complete(request | {"n": k})
        choices, tokens = first["choices"][:k], first["completion_tokens"]
        for j in range(len(choices), k):  # the server ignored n: one request per sample
            more = self._complete(request | {"n": 1, "seed": sampling.seed + j})
            choices.append(more["choices"][0])
            tokens += more["completion_tokens"]
        for choice in choices:
            if choice["tokens"] is not None:
                with self._lock:
                    self._tokens.setdefault(_chat_key(chat), []).append(choice["tokens"])
        return [c["text"] for c in choices], tokens

    def _complete(self, request: dict) -> dict:
        import openai

        key = self.cache.key(request)
        reply = self.cache.get(key)
        if reply is None:
            try:
                response = self.client.chat.completions.create(**request)
            except openai.APIError as exc:
                raise self._error(exc) from None
            with self._lock:
                self.requests_sent += 1
            if not response.choices:
                raise SuperalignError(
                    f"{self.endpoint}: the server's reply has no choices "
                    f"(asked for {request['n']}); is this a chat completions endpoint?"
                )
            reply = {
                "model": response.model,
                "choices": [_choice(c) for c in response.choices],
                "completion_tokens": response.usage.completion_tokens if response.usage else 0,
            }
            self.cache.put(key, reply)
        with self._lock:
            self.model_id = self.model_id or reply["model"]
        return reply

    def _error(self, exc: Exception) -> SuperalignError:
        import openai

        where, retries = self.endpoint, self.params.max_retries
        if isinstance(exc, openai.APIConnectionError):  # refused, unreachable, timed out
            kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "no connection"
            return SuperalignError(
                f"{where}: {kind} after {retries} retries ({_first_line(exc)}); "
                "is the server up? finished requests are cached, a rerun resumes"
            )
        if isinstance(exc, openai.AuthenticationError):
            source = f"${self.params.api_key_env}" if self.params.api_key_env else "no key"
            return SuperalignError(f"{where}: the server rejected the API key ({source})")
        if isinstance(exc, openai.NotFoundError):
            return SuperalignError(
                f"{where}: not found: unknown model '{where.model}' or not an OpenAI-compatible "
                f"URL ({_first_line(exc)})"
            )
        if isinstance(exc, openai.APIStatusError):
            return SuperalignError(
                f"{where}: HTTP {exc.status_code} after {retries} retries ({_first_line(exc)})"
            )
        return SuperalignError(f"{where}: {_first_line(exc)}")


def _choice(choice) -> dict:
    tokens = None
    if choice.logprobs is not None and choice.logprobs.content:
        tokens = [
            (t.token, {alt.token: alt.logprob for alt in (t.top_logprobs or [])})
            for t in choice.logprobs.content
        ]
    return {"text": (choice.message.content or "").strip(), "tokens": tokens}


def _chat_key(chat: Conversation) -> str:
    return json.dumps(chat, sort_keys=True)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_engine(
    spec: str | None,
    default_dir: str | Path,
    engine_params: EngineParams,
    served_params: ServedParams,
    where: str,
    logprobs: bool = False,
) -> tuple[Engine | ServedEngine, str]:
    """(engine, name) for a model named in params: an endpoint (`openai:MODEL@URL`, checked
    now), a model `load_base` knows, or, when `spec` is null, the checkpoint in
    `default_dir` (the base learner)."""
    if is_served(spec):
        endpoint = parse_endpoint(spec, where)
        return ServedEngine(endpoint, served_params, logprobs).check(), str(endpoint)
    if spec:
        model, tokenizer = load_base(LearnerParams(model=spec))
        return Engine(model, tokenizer, engine_params), spec
    model, tokenizer = load_checkpoint(default_dir)
    return Engine(model, tokenizer, engine_params), f"base:{Path(default_dir).name}"
