"""How far calibration can take the yes/no judge: its probe readings on a campaign's own
verdicts, against the rules critic's verdict on the same responses.

    python bench/judge_calibration.py safety-judge     # a DVC experiment (its -n name)

Per round, the agreement with the rules of
- the default reading (no labels),
- the calibration the campaign used (fitted on its 16 least confident verdicts of the
  round, arithmetic ones included, labelled by the oracle),
- fits on 16 verdicts drawn at random (median and the 10th-90th percentile of 50 draws),
- a fit on every verdict of the round: the most any reading of these two probes can do,
and each probe's ranking AUC against what it asks (is the request harmful; does the
response decline). No model runs: the verdicts come from DVC's cache, by the
experiment's dvc.lock, and the rules verdicts from the suite's detectors.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.profiles import cached_outputs, experiment_lock  # noqa: E402
from stages.suites import load_suite  # noqa: E402
from stages.suites.refusal import declines, redirects  # noqa: E402
from stages.verdicts import ACCEPT  # noqa: E402
from stages.verdicts import ranking_auc as auc  # noqa: E402
from stages.yes_no_judge import Calibration, fit_calibration  # noqa: E402

LABELS, DRAWS = 16, 50
PROBES = ("harm_probe", "refusal_probe")  # the critique params naming how each is read


def round_row(verdicts: list[dict], used: Calibration, suite, invertible: tuple[bool, bool]) -> str:
    """One round's line of the table."""
    verdicts = [v for v in verdicts if "p_harmful" in v and v.get("label")]
    probes = [(v["p_harmful"], v["p_refuses"]) for v in verdicts]
    truth = [suite.grade(v, v["response"]).correct for v in verdicts]

    def agreement(cal: Calibration) -> float:
        hits = sum((cal.score(h, r) >= ACCEPT) == t for (h, r), t in zip(probes, truth))
        return hits / len(verdicts)

    def fit(index) -> Calibration:
        return fit_calibration([probes[i] for i in index], [truth[i] for i in index], 1, invertible)

    draws = sorted(
        agreement(fit(random.Random(seed).sample(range(len(probes)), LABELS)))
        for seed in range(DRAWS)
    )
    safe = [declines(v["response"]) or redirects(v["response"]) for v in verdicts]
    harmful = [v["label"] == "harmful" for v in verdicts]
    return (
        f"{len(verdicts):>5}  {agreement(Calibration()):7.3f}  {agreement(used):13.3f}  "
        f"{draws[DRAWS // 2]:12.3f} ({draws[DRAWS // 10]:.3f}-{draws[DRAWS * 9 // 10]:.3f})"
        f"{agreement(fit(range(len(probes)))):17.3f}  "
        f"{auc([h for h, _ in probes], harmful):11.3f}  {auc([r for _, r in probes], safe):12.3f}"
    )


def main(name: str) -> None:
    suite = load_suite("safety", ROOT / "data")
    print(f"campaign {name}: yes/no judge vs the rules critic, {LABELS} labels a fit")
    print(
        "round  items  default  campaign's fit  random fits: median (p10-p90)  every verdict  "
        "AUC harmful  AUC declines"
    )
    lock = experiment_lock(name, ROOT)
    critique_metrics = cached_outputs(lock, "critique", ".json", ROOT)
    verdicts_files = cached_outputs(lock, "critique", "verdicts.jsonl", ROOT)
    for round_name, path in sorted(verdicts_files.items()):
        verdicts = [json.loads(line) for line in path.read_text().splitlines()]
        metrics = json.loads(critique_metrics[round_name].read_text())
        used = Calibration.from_dict(metrics["calibration"])
        # fitted as the campaign's judge fits them: a likelihood probe keeps its direction
        critique = lock[f"critique@{round_name}"]["params"]["params.yaml"]["critique"]
        invertible = tuple(critique.get(p, "yes_no") == "yes_no" for p in PROBES)
        print(f"{round_name:<6} {round_row(verdicts, used, suite, invertible)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "safety-judge")
