import subprocess
import sys
from dataclasses import dataclass

import pytest
from conftest import REPO

from stages.config import parse_section
from stages.errors import SuperalignError
from stages.params import (
    load_params,
    parse_rounds,
    policy_chain,
    recent_rounds,
    section_types,
)


def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_repo_params_parse():
    params = load_params(REPO / "params.yaml")
    assert params["learner"].model.startswith("embedded:")
    assert params["engine"].batch_size >= 1


def test_repo_params_name_every_key():
    """params.yaml is where a user finds every knob, and `dvc exp run -S key=value` can
    only set a key the file has (a key left out fails there: "Could not override")."""
    import dataclasses

    import yaml

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    missing = [
        f"{name}.{f.name}"
        for name, cls in section_types().items()
        for f in dataclasses.fields(cls)
        if f.name not in (raw.get(name) or {})
    ]
    assert missing == []


def test_misspelled_key_names_key_and_section(tmp_path):
    path = write(tmp_path, "evaluate:\n  max_new_tokns: 8\n")
    with pytest.raises(SuperalignError, match=r"unknown key 'max_new_tokns' in section 'evaluate'"):
        load_params(path)


def test_unknown_section(tmp_path):
    with pytest.raises(SuperalignError, match="unknown section 'evalute'"):
        load_params(write(tmp_path, "evalute:\n  limit: 3\n"))


def test_wrong_type_and_literal(tmp_path):
    with pytest.raises(SuperalignError, match=r"engine.batch_size must be int"):
        load_params(write(tmp_path, "engine:\n  batch_size: many\n"))
    with pytest.raises(SuperalignError, match=r"engine.dtype must be one of"):
        load_params(write(tmp_path, "engine:\n  dtype: float64\n"))
    with pytest.raises(SuperalignError, match=r"batch_size must be >= 1"):
        load_params(write(tmp_path, "engine:\n  batch_size: 0\n"))


def test_nested_and_optional_fields():
    @dataclass(frozen=True)
    class Inner:
        rate: float = 0.1

    @dataclass(frozen=True)
    class Outer:
        inner: Inner = Inner()
        names: tuple[str, ...] = ()
        limit: int | None = None

    parsed = parse_section(Outer, {"inner": {"rate": 1}, "names": ["a"], "limit": None}, "outer")
    assert parsed == Outer(Inner(1.0), ("a",), None)
    with pytest.raises(SuperalignError, match="unknown key 'rat' in section 'outer.inner'"):
        parse_section(Outer, {"inner": {"rat": 1}}, "outer")


def test_rounds_chain_and_errors():
    rounds = parse_rounds({"r2": {"prev": "r1"}, "r1": {"prev": "r0"}})
    assert list(rounds) == ["r1", "r2"]
    assert policy_chain(rounds, "r2") == ["r1", "r2"]
    assert policy_chain(rounds, "r0") == []
    assert recent_rounds(rounds, "r2", 1) == ["r2"]  # train's replay, critique's labels
    assert recent_rounds(rounds, "r2", 5) == ["r1", "r2"]
    assert recent_rounds(rounds, "r2", 0) == []
    with pytest.raises(SuperalignError, match="unknown round 'r5'"):
        parse_rounds({"r1": {"prev": "r5"}})
    with pytest.raises(SuperalignError, match="earlier round"):
        parse_rounds({"r1": {"prev": "r2"}, "r2": {"prev": "r0"}})
    with pytest.raises(SuperalignError, match="look like r1"):
        parse_rounds({"round1": {"prev": "r0"}})


def test_stage_reports_bad_params_in_one_line(tmp_path):
    path = write(tmp_path, "learner:\n  modle: x\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.prepare",
            "--out",
            str(tmp_path / "m"),
            "--trained-on",
            str(tmp_path / "t.jsonl"),
            "--labelled",
            str(tmp_path / "l.jsonl"),
            "--params",
            str(path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "error: params: unknown key 'modle' in section 'learner' "
        "(known keys: model, trust_remote_code)"
    ]
    assert not (tmp_path / "m").exists()
