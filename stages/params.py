"""params.yaml as typed, validated sections: the one place that knows every section.

Each stage declares its own frozen dataclass next to its logic; this module maps section
names to those classes, so a whole-file check (`superalign check`, and every stage's
start) rejects an unknown section or key before any work is done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .config import parse_section
from .errors import SuperalignError

DEFAULT_PARAMS = "params.yaml"


@dataclass(frozen=True)
class RoundSpec:
    """One round of the loop; DVC templating has no arithmetic, so it names its predecessor."""

    prev: str


@dataclass(frozen=True)
class SuiteParams:
    """Which task family the rounds run on: data/<name>/ holds its held-out set, seed
    topics and constitution."""

    name: Literal["arithmetic", "open"] = "arithmetic"


@dataclass(frozen=True)
class TrackingParams:
    """Where runs are grouped. Not a dependency of any stage: renaming reruns nothing."""

    campaign: str = "main"  # overridden by $SUPERALIGN_CAMPAIGN or a DVC experiment's name


def section_types() -> dict[str, type]:
    # Imported here, not at module top, so stage modules can import this one.
    from .attack import AttackParams
    from .build_prefs import BuildPrefsParams
    from .critique import CritiqueParams
    from .engine import EngineParams
    from .evaluate import EvaluateParams
    from .models import LearnerParams
    from .report import ReportParams
    from .sample import SampleParams
    from .train import TrainParams

    return {
        "learner": LearnerParams,
        "engine": EngineParams,
        "suite": SuiteParams,
        "attack": AttackParams,
        "sample": SampleParams,
        "critique": CritiqueParams,
        "build_prefs": BuildPrefsParams,
        "train": TrainParams,
        "evaluate": EvaluateParams,
        "report": ReportParams,
        "tracking": TrackingParams,
    }


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Every section parsed and checked; `rounds` as name -> RoundSpec in chain order."""
    path = Path(path)
    if not path.is_file():
        raise SuperalignError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SuperalignError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise SuperalignError(f"{path}: expected a mapping of sections")
    types = section_types()
    known = set(types) | {"rounds"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SuperalignError(
            f"params: unknown section '{unknown[0]}' (known sections: {', '.join(sorted(known))})"
        )
    params: dict[str, Any] = {
        name: parse_section(cls, raw.get(name), name) for name, cls in types.items()
    }
    params["rounds"] = parse_rounds(raw.get("rounds"))
    return params


def parse_rounds(raw: Any) -> dict[str, RoundSpec]:
    """Rounds r1..rN, each naming its predecessor; r0 is the base learner and is implicit."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SuperalignError("params: section 'rounds' must map round names to {prev: ...}")
    rounds = {}
    for name, spec in raw.items():
        if not re.fullmatch(r"r[1-9]\d*", str(name)):
            raise SuperalignError(f"params: round name '{name}' must look like r1, r2, ...")
        rounds[name] = parse_section(RoundSpec, spec, f"rounds.{name}")
    for name, spec in rounds.items():
        if spec.prev != "r0" and spec.prev not in rounds:
            raise SuperalignError(f"params: rounds.{name}.prev names unknown round '{spec.prev}'")
        if int(spec.prev[1:]) >= int(name[1:]):
            raise SuperalignError(f"params: rounds.{name}.prev must be an earlier round")
    return dict(sorted(rounds.items(), key=lambda kv: int(kv[0][1:])))


def policy_chain(rounds: dict[str, RoundSpec], round_name: str) -> list[str]:
    """The rounds whose adapters make up `round_name`'s policy, oldest first (r0 excluded)."""
    chain = []
    while round_name != "r0":
        if round_name not in rounds:
            raise SuperalignError(f"params: unknown round '{round_name}'")
        chain.append(round_name)
        round_name = rounds[round_name].prev
    return chain[::-1]
