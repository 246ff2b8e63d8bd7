"""Suites: the tasks the loop runs on. `load_suite` turns `suite.name` into a Suite.

Built-in suites are modules in this package, registered in BUILTIN by name. A user's data
is `jsonl:PATH` or `datasets:DIR` (jsonl.py). Writing a new suite: docs/suites.md.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..errors import SuperalignError
from ..params import SuiteParams
from .arithmetic import ArithmeticSuite
from .base import Suite
from .jsonl import DATASETS_PREFIX, JSONL_PREFIX, UserSuite
from .mixture import MixtureSuite
from .open import OpenSuite
from .safety import SafetySuite

BUILTIN: dict[str, type[Suite]] = {
    ArithmeticSuite.name: ArithmeticSuite,
    OpenSuite.name: OpenSuite,
    SafetySuite.name: SafetySuite,
}


def load_suite(params: SuiteParams | str, data_dir: str | Path = "data") -> Suite:
    """The suite params name (a mixture when `mix` adds others); an unknown name is a
    one-line error listing the choices."""
    if isinstance(params, str):
        params = SuiteParams(name=params)
    if params.mix:
        main_share = 1 - sum(params.mix.values())
        parts = [(_single(params, data_dir), main_share)]
        for name, weight in params.mix.items():
            part = dataclasses.replace(params, name=name, mix={})
            parts.append((_single(part, data_dir), weight))
        return MixtureSuite(params, Path(data_dir), parts)
    return _single(params, data_dir)


def _single(params: SuiteParams, data_dir: str | Path) -> Suite:
    name, data_dir = params.name.strip(), Path(data_dir)
    if name.startswith(JSONL_PREFIX):
        return UserSuite(params, data_dir, Path(name[len(JSONL_PREFIX) :]), "jsonl")
    if name.startswith(DATASETS_PREFIX):
        return UserSuite(params, data_dir, Path(name[len(DATASETS_PREFIX) :]), "datasets")
    if name in BUILTIN:
        return BUILTIN[name](params, data_dir)
    raise SuperalignError(
        f"suite: unknown suite '{name}' (built-in: {', '.join(BUILTIN)}; "
        f"or {JSONL_PREFIX}PATH, or {DATASETS_PREFIX}DIR)"
    )


__all__ = ["BUILTIN", "Suite", "load_suite"]
