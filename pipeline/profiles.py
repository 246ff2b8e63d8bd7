"""Params profiles: a named set of params changes, run as a DVC experiment.

A profile is a YAML file under profiles/ shaped like params.yaml, holding only what it
changes (or `extends: OTHER` and what it changes on top of that profile). `superalign
exp NAME` turns it into `dvc exp run -S key=value ...` (checked
against the params schema first, so a misspelled key fails before anything runs), so
the experiment is an ordinary DVC experiment: `dvc exp show` lists it beside the others
and `dvc exp apply` brings it into the workspace.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from stages.errors import SuperalignError
from stages.params import check_params

PROFILES_DIR = Path("profiles")


def read_profile(name: str, root: Path = Path("."), _seen: tuple[str, ...] = ()) -> dict:
    """The profile's changes, merged over those of the profile it `extends` (if any), so
    two campaigns meant to differ in one knob (the critic) say everything else once."""
    if name in _seen:
        raise SuperalignError(f"profile '{name}': extends itself ({' -> '.join(_seen + (name,))})")
    profile = _read_profile_file(name, root)
    base = profile.pop("extends", None)
    if base is None:
        return profile
    if not isinstance(base, str):
        raise SuperalignError(f"profile '{name}': extends must name one profile, got {base!r}")
    return merged(read_profile(base, root, _seen + (name,)), profile)


def _read_profile_file(name: str, root: Path) -> dict:
    path = root / PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in (root / PROFILES_DIR).glob("*.yaml"))) or "none"
        raise SuperalignError(f"profile '{name}': no {path} (profiles: {known})")
    try:
        profile = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SuperalignError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(profile, dict):
        raise SuperalignError(f"{path}: expected sections like params.yaml")
    return profile


def leaves(tree: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mapping -> (dotted key, value) for every value that is not a mapping."""
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out += leaves(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def merged(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = merged(base[key], value)
        else:
            out[key] = value
    return out


def overrides(profile: dict, params_path: Path) -> list[str]:
    """`-S` values for `dvc exp run`: `key=value`, or `+key=value` for a key params.yaml
    does not have yet (an entry of a mapping such as `suite.mix`), as DVC's parser wants."""
    base = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
    check_params(merged(base, profile), f"{params_path} + profile")
    out = []
    for key, value in leaves(profile):
        plus = "" if _present(base, key) else "+"
        text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        out.append(f"{plus}{key}={text}")
    return out


def with_sets(changes: list[str], sets: list[str]) -> list[str]:
    """A profile's `changes` followed by `sets` (the user's `-S` values, then a seed's),
    each key once with the last value given for it: DVC is never handed a key twice. A
    key the profile adds to a mapping (`+key=...`) keeps its `+` when a set changes it."""
    added = {_key(c) for c in changes if c.startswith("+")}
    last: dict[str, str] = {}
    for change in sets:
        key = _key(change)
        last[key] = "+" + change if key in added and not change.startswith("+") else change
    return [c for c in changes if _key(c) not in last] + list(last.values())


def _key(change: str) -> str:
    return change.partition("=")[0].strip().lstrip("+~")


def _present(tree: dict, key: str) -> bool:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


CAMPAIGNS_DIR = Path("reports/campaigns")
# What a saved campaign keeps from its experiment: the headline figures, every round's
# row, and the exact params it ran with (a fresh clone has no experiment refs to ask).
CAMPAIGN_FILES = ("reports/summary.json", "reports/rounds.csv", "params.yaml")


def experiment_ref(name: str, root: Path = Path(".")) -> str:
    """The git ref DVC keeps experiment `name` under (the newest, if several)."""
    refs = _git(
        root, "for-each-ref", "--sort=-creatordate", "--format=%(refname)", "refs/exps"
    ).split()
    found = [r for r in refs if r.rsplit("/", 1)[-1] == name]
    if not found:
        raise SuperalignError(f"no DVC experiment named '{name}' (dvc exp list shows them)")
    return found[0]


def save_campaign(name: str, root: Path = Path("."), command: str | None = None) -> Path:
    """Copy an experiment's summary, rounds table and params to reports/campaigns/<name>/,
    with its held-out rate per bucket each round (buckets.csv), files to commit:
    `superalign status` lists every campaign found there. campaign.json says where it
    came from: the commit it ran on, the command that ran it, and the machine (its round
    times are that machine's)."""
    from pipeline.buckets import BUCKETS_FILE, bucket_rows, ref_metrics, write_buckets
    from pipeline.machine import machine
    from stages.records import atomic_path, write_json

    ref = experiment_ref(name, root)
    out = root / CAMPAIGNS_DIR / name
    for path in CAMPAIGN_FILES:
        text = _show(ref, path, root)
        if text is None:
            raise SuperalignError(f"experiment '{name}' has no {path} (did its report run?)")
        with atomic_path(out / Path(path).name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    buckets = bucket_rows(ref_metrics(ref, root))
    if buckets:
        write_buckets(buckets, out / BUCKETS_FILE)
    baseline = _git(root, "rev-parse", f"{ref}^").strip()
    origin = {"experiment": name, "baseline_commit": baseline}
    origin |= {"command": command, "machine": machine()}
    write_json(out / "campaign.json", origin)
    return out


def _git(root: Path, *args: str, check: bool = True) -> str | None:
    """git's output, run in `root`; if git fails, a one-line error (None unless `check`)."""
    import subprocess

    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if done.returncode == 0:
        return done.stdout
    if not check:
        return None
    raise SuperalignError(f"git {' '.join(args)}: {done.stderr.strip().splitlines()[-1]}")


def _show(ref: str, path: str, root: Path) -> str | None:
    """A file as commit `ref` holds it, or None."""
    return _git(root, "show", f"{ref}:{path}", check=False)


def experiment_file(name: str, path: str, root: Path = Path(".")) -> str | None:
    """A git-tracked file (a metrics file, dvc.lock) as experiment `name` left it, or None."""
    return _show(experiment_ref(name, root), path, root)


def experiment_lock(name: str, root: Path = Path(".")) -> dict:
    """The stages of experiment `name`'s dvc.lock: where each of its outputs is cached."""
    import yaml

    lock = experiment_file(name, "dvc.lock", root)
    if lock is None:
        raise SuperalignError(f"experiment '{name}' has no dvc.lock")
    return yaml.safe_load(lock)["stages"]


def cache_path(md5: str, root: Path = Path(".")) -> Path:
    """Where DVC's cache keeps the content with this md5 (a directory's `.dir` manifest
    included: its md5 ends in `.dir`)."""
    return root / ".dvc/cache/files/md5" / md5[:2] / md5[2:]


def cached_outputs(
    lock: dict, stage_name: str, suffix: str, root: Path = Path("."), r0_stage: str | None = None
) -> dict[str, Path]:
    """Round -> the DVC cache file of that round's `stage_name` output ending in `suffix`,
    for reading an experiment's artifacts without checking it out. `r0_stage` names the
    stage that plays round 0 (`baseline` for `evaluate`), if any."""
    out = {}
    for stage, spec in lock.items():
        if stage.startswith(f"{stage_name}@"):
            name = stage.split("@")[1]
        elif stage == r0_stage:
            name = "r0"
        else:
            continue
        for o in spec.get("outs", []):
            if o["path"].endswith(suffix):
                out[name] = cache_path(o["md5"], root)
    return out


def round_files(
    name: str, stage_name: str, suffix: str, root: Path = Path("."), r0_stage: str | None = None
) -> dict[str, Path]:
    """Round -> campaign `name`'s `stage_name` output ending in `suffix`: from DVC's cache
    by the experiment's dvc.lock, or, where `name` is a campaign's workspace directory (one
    run on another machine, its data/rounds copied back), its own data/rounds/rK/ files."""
    workspace_rounds = Path(name) / "data" / "rounds"
    if not workspace_rounds.is_dir():
        return cached_outputs(experiment_lock(name, root), stage_name, suffix, root, r0_stage)
    files = {p.parent.name: p for p in workspace_rounds.glob(f"r*/{suffix}")}
    if not files:
        raise SuperalignError(f"{workspace_rounds}: no rK/{suffix}")
    return files


def heldout_results(name: str, root: Path = Path(".")) -> dict[str, list[dict]]:
    """Round -> campaign `name`'s graded held-out answers (baseline's for r0, then each
    evaluate@rK's eval.jsonl; `round_files`), rounds in order."""
    from stages.records import read_jsonl

    files = round_files(name, "evaluate", "eval.jsonl", root, r0_stage="baseline")
    rounds = {
        round_name: [r for r in read_jsonl(path) if r["set"] == "heldout"]
        for round_name, path in files.items()
    }
    return dict(sorted(rounds.items(), key=lambda kv: int(kv[0][1:])))


def campaign_rounds(name: str, root: Path = Path(".")) -> dict[str, dict[str, str]]:
    """Round -> its row of a saved campaign's rounds table (empty if none was saved)."""
    import csv

    path = root / CAMPAIGNS_DIR / name / "rounds.csv"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as f:
        return {row["round"]: row for row in csv.DictReader(f)}


def campaign_rows(root: Path = Path(".")) -> list[dict]:
    """One row per saved campaign: its headline metric from r0 to the last round, and PGR."""
    import json

    rows = []
    for summary_path in sorted((root / CAMPAIGNS_DIR).glob("*/summary.json")):
        s = json.loads(summary_path.read_text(encoding="utf-8"))
        rows.append(
            {
                "campaign": summary_path.parent.name,
                "metric": s.get("metric", "heldout.accuracy"),
                "rounds": s.get("rounds"),
                "r0": s.get("metric_r0", s.get("heldout_accuracy_r0")),
                "final": s.get("metric_final", s.get("heldout_accuracy_final")),
                "gain": s.get("gain"),
                "pgr": s.get("pgr"),
            }
        )
    return rows


# Every seed of a campaign but the suite's split, which stays fixed so that every seed
# is scored on the same held-out items.
SEED_KEYS = ("attack.seed", "sample.seed", "critique.seed", "train.seed")
SEED_RUN = re.compile(r"(.+)-seed\d+")  # NAME-seedN, as `superalign exp --seeds` names them
# the rounds table's columns holding a held-out group's rate: the group is what they name
HELDOUT_GROUP = re.compile(
    r"heldout_labels_(\w+)|heldout_suites_(\w+?)_accuracy|(transfer_labels_\w+)"
)


def seed_run_name(name: str, seed: int) -> str:
    return f"{name}-seed{seed}"  # what SEED_RUN matches


def seed_overrides(seed: int) -> list[str]:
    return [f"{key}={seed}" for key in SEED_KEYS]


def parse_seeds(text: str) -> list[int]:
    """ "0,1,2,3" or "0-3" -> [0, 1, 2, 3]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            seeds += range(int(low), int(high or low) + 1)
    except ValueError:
        raise SuperalignError(
            f"--seeds: expected numbers like 0,1,2 or 0-3, got {text!r}"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise SuperalignError(f"--seeds: expected distinct seeds >= 0, got {text!r}")
    return seeds


def seed_groups(root: Path = Path(".")) -> list[dict]:
    """One row per campaign run on several seeds (saved as NAME-seedN; NAME itself counts
    as seed 0 when it is saved too and NAME-seed0 is not: the same run, once): how many, the headline gain's mean, min and max, and
    the mean change from r0 to the last round of each held-out group (`heldout_labels_*`,
    `heldout_suites_*_accuracy`): for safety, harmful, benign and the mixed-in suites."""
    import statistics

    saved = {row["campaign"]: row for row in campaign_rows(root)}
    members: dict[str, list[str]] = {}
    for name in saved:
        match = SEED_RUN.fullmatch(name)
        if match:
            members.setdefault(match.group(1), []).append(name)
    rows = []
    for group, names in sorted(members.items()):
        names = ([group] if group in saved and f"{group}-seed0" not in saved else []) + names
        if len(names) < 2:
            continue
        gains = [saved[n]["gain"] for n in names if saved[n]["gain"] is not None]
        row = {"group": group, "seeds": len(names)}
        row |= {
            "gain_mean": statistics.fmean(gains) if gains else None,
            "gain_min": min(gains, default=None),
            "gain_max": max(gains, default=None),
        }
        changes: dict[str, list[float]] = {}
        for name in names:
            for column, change in _heldout_changes(campaign_rounds(name, root)).items():
                changes.setdefault(column, []).append(change)
        row |= {col: statistics.fmean(v) for col, v in changes.items() if len(v) == len(names)}
        rows.append(row)
    return rows


def _heldout_changes(rounds: dict[str, dict[str, str]]) -> dict[str, float]:
    """Held-out group -> its change from r0 to the last round of a saved rounds table."""
    if "r0" not in rounds or len(rounds) < 2:
        return {}
    first = rounds["r0"]
    last = rounds[max(rounds, key=lambda r: int(r[1:]))]
    out = {}
    for column in first:
        match = HELDOUT_GROUP.fullmatch(column)
        if match and first[column] and last.get(column):
            name = match.group(1) or match.group(2) or match.group(3)
            out[name] = float(last[column]) - float(first[column])
    return out
