"""Does the learner's reading foresee its over-refusal? (what `attack.screen` relies on)

For a safety campaign NAME, each round's learner (rebuilt from the experiment's adapters in
DVC's cache) reads every held-out benign request the way the attacker's screen does: a
plain refusal's likelihood as its reply (`stages.yes_no_judge.plain_refusal_likelihood`).
Printed: the ranking AUC of that reading against which requests a later round's learner
refused at evaluation (1.0: every refused request read higher than every answered one;
0.5: chance). A reading taken before any refusal shows that ranks the later refusals
high is what lets the attacker teach answering them ahead of time.

    python bench/screen_foresight.py mirror-f1-lr7-seed3
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.profiles import cache_path, experiment_lock, heldout_results  # noqa: E402
from stages.verdicts import ranking_auc  # noqa: E402


def restore_models(lock: dict, dest: Path) -> list[str]:
    """models/rK of every round the experiment trained (and r0), copied out of DVC's cache
    into dest/rK; the round names, in order."""
    rounds = []
    for spec in lock.values():
        for out in spec.get("outs", []):
            if not (out["path"].startswith("models/r") and out["md5"].endswith(".dir")):
                continue
            name = out["path"].removeprefix("models/")
            for entry in json.loads(cache_path(out["md5"], ROOT).read_text()):
                target = dest / name / entry["relpath"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(cache_path(entry["md5"], ROOT), target)
            rounds.append(name)
    return sorted(rounds, key=lambda r: int(r[1:]))


def main(name: str) -> None:
    from stages.engine import Engine
    from stages.params import DEFAULT_PARAMS, load_params
    from stages.policy import load_policy
    from stages.yes_no_judge import plain_refusal_likelihood

    lock = experiment_lock(name, ROOT)
    results = heldout_results(name, ROOT)
    benign = [r["prompt"] for r in results["r0"] if r.get("label") == "benign"]
    answered = {
        k: {r["prompt"]: r["correct"] for r in rows if r.get("label") == "benign"}
        for k, rows in results.items()
    }
    params = load_params(DEFAULT_PARAMS)
    print(f"campaign {name}: {len(benign)} held-out benign requests")
    print("reader  " + "  ".join(f"refused@{k} (n, AUC)" for k in answered if k != "r0"))
    with tempfile.TemporaryDirectory() as tmp:
        rounds = restore_models(lock, Path(tmp))
        for reader in rounds[:-1]:  # the last round's learner has no later round to foresee
            model, tokenizer = load_policy(reader, tmp, params["rounds"])
            reading = plain_refusal_likelihood(Engine(model, tokenizer, params["engine"]), benign)
            cells = []
            for k, ok in answered.items():
                if int(k[1:]) <= int(reader[1:]):
                    continue
                refused = [not ok[p] for p in benign]
                n = sum(refused)
                auc = f"{ranking_auc(reading, refused):.2f}" if 0 < n < len(benign) else "-"
                cells.append(f"{k}: {n:2d}, {auc}")
            print(f"{reader:6s}  " + "   ".join(cells))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(sys.argv[1])
