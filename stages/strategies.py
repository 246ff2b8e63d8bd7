"""Red-teaming strategies: how the strategy attacker turns an intent into a new request.

A strategy has an `instruction` for the attacker model (rewrite the intent in its way)
and/or a `template` that wraps the intent without a model (the fallback when the model's
rewrite is unusable: too short or long, or it lost the intent's subject). The built-in
set (strategies.yaml) covers instruction style, role-play, hypothetical / research
framing, persuasion, past tense and two jailbreak wrappers, the wrappers and the tense
instruction read from PyRIT's packaged templates. `attack.strategies` may name a YAML file
of the same shape instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import SuperalignError
from .packaged import PYRIT, package_file
from .text import words

BUILTIN = Path(__file__).with_name("strategies.yaml")
PLAIN = "plain"  # the intent as it is: the pool draw the rewrites are compared with
PYRIT_PREFIX = "pyrit:"
_PARAMETER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class Strategy:
    name: str
    instruction: str | None  # system message for the attacker model; None: template only
    template: str | None  # with {prompt}; None: model only (an unusable rewrite is dropped)

    def wrap(self, intent: str) -> str | None:
        return self.template.replace("{prompt}", intent) if self.template else None


def _resolve(text: str, parameters: dict, where: str) -> str:
    """A strategy's text: inline, or a PyRIT dataset file's `value`, its {{ name }}
    parameters filled and {{ prompt }} kept as {prompt}."""
    if text.startswith(PYRIT_PREFIX):
        rel = "pyrit/datasets/" + text[len(PYRIT_PREFIX) :].lstrip("/")
        path = package_file(PYRIT, rel, f"{where} ({text})")
        try:
            text = str(yaml.safe_load(path.read_text(encoding="utf-8"))["value"])
        except (yaml.YAMLError, KeyError, TypeError):
            raise SuperalignError(f"{where}: {path} has no `value` to use") from None
    params = {str(k): str(v) for k, v in parameters.items()} | {"prompt": "{prompt}"}

    def fill(match: re.Match) -> str:
        if match.group(1) not in params:
            raise SuperalignError(
                f"{where}: the text needs parameter '{match.group(1)}'; add it under `parameters`"
            )
        return params[match.group(1)]

    return _PARAMETER.sub(fill, text).strip()


def load_strategies(path: str | Path | None = None) -> list[Strategy]:
    """The strategies in `path` (None: the built-in set), checked: each has a unique name
    and an instruction or a template, and a template has {prompt}."""
    path = Path(path) if path else BUILTIN
    if not path.is_file():
        raise SuperalignError(f"attack.strategies: {path}: file not found")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SuperalignError(f"attack.strategies: {path}: not YAML ({exc})".splitlines()[0]) from None
    rows = doc.get("strategies") if isinstance(doc, dict) else None
    if not isinstance(rows, list) or not rows:
        raise SuperalignError(f"attack.strategies: {path}: wants a non-empty `strategies:` list")
    strategies, seen = [], set()
    for i, row in enumerate(rows, 1):
        where = f"{path}: strategy {i}"
        if not isinstance(row, dict) or not str(row.get("name") or "").strip():
            raise SuperalignError(f"{where}: needs a name")
        name = str(row["name"]).strip()
        where = f"{path}: strategy '{name}'"
        unknown = set(row) - {"name", "instruction", "template", "parameters"}
        if unknown:
            raise SuperalignError(f"{where}: unknown key '{sorted(unknown)[0]}'")
        if name in seen or name == PLAIN:
            raise SuperalignError(f"{where}: the name is taken (each once; '{PLAIN}' is the intent as is)")
        seen.add(name)
        parameters = row.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise SuperalignError(f"{where}: parameters must be a mapping")
        texts = {}
        for key in ("instruction", "template"):
            value = row.get(key)
            if value is not None and not isinstance(value, str):
                raise SuperalignError(f"{where}: {key} must be text")
            texts[key] = _resolve(value, parameters, where) if value else None
        if not texts["instruction"] and not texts["template"]:
            raise SuperalignError(f"{where}: needs an instruction, a template or both")
        if texts["template"] and "{prompt}" not in texts["template"]:
            raise SuperalignError(f"{where}: the template never uses {{prompt}}, the intent")
        strategies.append(Strategy(name, texts["instruction"], texts["template"]))
    return strategies


_LEAD = re.compile(
    r"^\s*(?:(?:rewritten|new|converted|mutated)?\s*(?:request|prompt|question|instruction)"
    r"\s*:|assistant\s*:|\d+[.)]|[-*])\s*",
    re.IGNORECASE,
)
MIN_CHARS, MAX_CHARS = 15, 400
MIN_SUBJECT = 0.4  # share of the intent's content words a rewrite must keep
# a request asks: a question, or an opening that asks for something (a small attacker
# model often answers the intent instead of rewriting it)
_ASKS = re.compile(
    r"\?\s*$|^\W*(?:give|tell|explain|describe|write|list|show|provide|detail|outline|"
    r"teach|help|please|imagine|pretend|suppose|assume|as an?|in (?:a|an|the|this)|"
    r"how|what(?! a\b)|why|which|who|where|when|can|could|would|will|is|are|do|does|did)\b",
    re.IGNORECASE,
)


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if len(w) >= 4 and w.isalpha()}


def clean_rewrite(reply: str, intent: str) -> str | None:
    """The attacker model's rewrite from its reply, or None when unusable: no text of a
    sensible length, not a request (an answer), the intent unchanged, or most of the
    intent's subject lost (a refusal, an unrelated request)."""
    text = next((p.strip() for p in re.split(r"\n\s*\n", reply) if p.strip()), "")
    text = _LEAD.sub("", text).strip().strip("\"'\u201c\u201d").strip()
    if not MIN_CHARS <= len(text) <= MAX_CHARS:
        return None
    subject = content_words(intent)
    if subject and len(subject & content_words(text)) / len(subject) < MIN_SUBJECT:
        return None
    if " ".join(words(text)) == " ".join(words(intent)) or not _ASKS.search(text):
        return None  # no rewrite at all, or not a request
    return text
