"""Extend params.yaml's `rounds:` map without hand-editing YAML (comments and layout kept)."""

from __future__ import annotations

from pathlib import Path

from stages.errors import SuperalignError
from stages.params import load_params


def extend_rounds(params_path: str | Path, total: int) -> list[str]:
    """Make the chain r1..r<total> exist (a longer chain is left alone); returns new rounds."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    params_path = Path(params_path)
    rounds = load_params(params_path)["rounds"]  # validates the file first
    if total < 1:
        raise SuperalignError(f"rounds: need at least 1 round, got {total}")
    last = max((int(name[1:]) for name in rounds), default=0)
    if total <= last:
        return []
    yaml = YAML()  # round-trip mode: comments, order and quoting survive
    yaml.preserve_quotes = True
    doc = yaml.load(params_path.read_text(encoding="utf-8"))
    if not isinstance(doc.get("rounds"), dict):
        doc["rounds"] = CommentedMap()
    added = []
    for k in range(last + 1, total + 1):
        entry = CommentedMap(prev=f"r{k - 1}")
        entry.fa.set_flow_style()  # `r4: {prev: r3}`, like the hand-written ones
        doc["rounds"][f"r{k}"] = entry
        added.append(f"r{k}")
    tmp = params_path.with_suffix(".yaml.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)
    load_params(tmp)  # never leave an invalid params.yaml behind
    tmp.replace(params_path)
    return added


def add_rounds(params_path: str | Path, count: int) -> list[str]:
    """Append `count` rounds after the current last one."""
    rounds = load_params(params_path)["rounds"]
    last = max((int(name[1:]) for name in rounds), default=0)
    return extend_rounds(params_path, last + count)


def evaluated_rounds(metrics_dir: Path) -> list[str]:
    """The rounds with a metrics/rK.json in `metrics_dir`, in round order (r0 first)."""
    return round_order(p.name for p in metrics_dir.glob("r*.json"))


def round_order(file_names) -> list[str]:
    """File names like rK.json -> their rounds in round order (other names ignored)."""
    numbers = (name.removesuffix(".json")[1:] for name in file_names if name.startswith("r"))
    return [f"r{k}" for k in sorted(int(n) for n in numbers if n.isdigit())]
