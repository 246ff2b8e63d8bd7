"""Suites: the tasks the loop runs on. `load_suite` turns `suite.name` into a Suite.

Built-in suites are modules in this package, registered in BUILTIN by name. A user's data
is `jsonl:PATH` or `datasets:DIR` (jsonl.py). Writing a new suite: docs/suites.md.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SuperalignError
from ..params import SuiteParams
from .arithmetic import ArithmeticSuite
from .base import Suite
from .jsonl import DATASETS_PREFIX, JSONL_PREFIX, UserSuite
from .open import OpenSuite

BUILTIN: dict[str, type[Suite]] = {
    ArithmeticSuite.name: ArithmeticSuite,
    OpenSuite.name: OpenSuite,
}


def load_suite(params: SuiteParams | str, data_dir: str | Path = "data") -> Suite:
    """The suite `params.name` names; an unknown name is a one-line error listing choices."""
    if isinstance(params, str):
        params = SuiteParams(name=params)
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
