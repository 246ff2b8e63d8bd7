"""dvc.yaml declares what every stage reads: each project module its command imports
(directly or through other project modules) is a dependency, so changing the code of a
critic reruns the stages that use it instead of trusting stale outputs."""

import ast
import re
from pathlib import Path

import yaml
from conftest import REPO


def module_file(name: str) -> Path:
    path = REPO / Path(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def project_imports(module: str) -> set[str]:
    """Every `stages.*` module `module` imports, transitively (relative imports resolved)."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            for cand in candidates:
                if cand.startswith("stages") and module_file(cand).is_file():
                    todo.append(cand)
    return seen


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def stage_commands() -> dict[str, tuple[str, list[str]]]:
    dag = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in dag.items():
        body = stage.get("do", stage)
        module = re.search(r"python -m (\S+)", body["cmd"]).group(1)
        out[name] = (module, [d for d in body.get("deps", []) if isinstance(d, str)])
    return out


def missing_deps(stages: dict[str, tuple[str, list[str]]]) -> dict[str, list[str]]:
    missing = {}
    for name, (module, deps) in stages.items():
        files = {module_file(m) for m in project_imports(module)}
        files.discard(REPO / "stages/__init__.py")
        gaps = sorted(f.relative_to(REPO).as_posix() for f in files if not covered(f, deps))
        if gaps:
            missing[name] = gaps
    return missing


def test_every_stage_declares_the_modules_it_imports():
    assert missing_deps(stage_commands()) == {}


def test_the_check_fails_when_a_dependency_is_removed():
    stages = stage_commands()
    module, deps = stages["critique"]
    stages["critique"] = (module, [d for d in deps if d != "stages/critics.py"])
    assert missing_deps(stages) == {"critique": ["stages/critics.py"]}


def test_revise_declares_every_build_prefs_key_it_reads():
    """revise lists build_prefs keys one by one, so a key added to BuildPrefsParams must be
    declared there too, or changing it would not rerun revise (contrast_in once was not).
    pairs_per_query, contrast_ratio, contrast_floor and pairs_from only shape the pairs
    build_prefs makes (which pairs, how many), not what revise asks for: a campaign that
    changes them reuses revise. (pairs_from: a query is paired, revised or contrasted on
    the same test either way, its best score against its worst.)"""
    import dataclasses

    from stages.params import BuildPrefsParams

    not_read_by_revise = {"pairs_per_query", "contrast_ratio", "contrast_floor", "pairs_from"}
    fields = {f.name for f in dataclasses.fields(BuildPrefsParams)} - not_read_by_revise
    params = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["revise"]["do"]["params"]
    declared = {p.split(".", 1)[1] for p in params if str(p).startswith("build_prefs.")}
    assert declared == fields
