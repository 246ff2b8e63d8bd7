"""Read the pipeline as DVC resolves it, so nothing here restates a path or a stage."""

from __future__ import annotations

import shlex
from pathlib import Path

from stages.errors import SuperalignError


def resolved_stages(root: str | Path = ".") -> dict[str, str]:
    """Stage name (e.g. `critique@r2`) -> its resolved command, in dvc.yaml order."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            return {stage.addressing: stage.cmd for stage in repo.index.stages if stage.cmd}
    except DvcException as exc:
        raise SuperalignError(f"dvc: {exc}") from None


def option_of(stages: dict[str, str], stage: str, option: str) -> str:
    """The value a stage's command passes for `--option`, from `resolved_stages`."""
    if stage not in stages:
        raise SuperalignError(f"no DVC stage '{stage}' (is the round in params.yaml rounds?)")
    args = shlex.split(stages[stage])
    if option not in args[:-1]:
        raise SuperalignError(f"stage '{stage}' passes no {option}")
    return args[args.index(option) + 1]


def ordered_stages(root: str | Path = ".") -> list[str]:
    """Every stage in an order that respects dependencies, rounds grouped together.

    Ties are broken by round, then by position in dvc.yaml, so the flow runs r1's
    stages, then r2's, the way a person reads the DAG.
    """
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edge: stage -> a stage it depends on
        position = {stage: i for i, stage in enumerate(repo.index.stages)}
        names = {stage: stage.addressing for stage in graph.nodes}

        def rank(stage):
            name = names[stage]
            round_no = (
                int(name.split("@r", 1)[1]) if "@r" in name else (10**6 if name == "report" else 0)
            )
            return (round_no, position.get(stage, 0))

        order = nx.lexicographical_topological_sort(graph.reverse(copy=False), key=rank)
        return [names[stage] for stage in order if stage.cmd]
