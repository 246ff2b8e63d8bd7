"""How well the yes/no judge tells a refusal from an answer, read both ways, on the
learner's own responses of a campaign.

    python bench/refusal_probe.py safety-judge     # a DVC experiment (its -n name)

For each round's judged samples of labelled requests (from DVC's cache, by the
experiment's dvc.lock), the judge model (the base learner, models/r0) reads "does the
response refuse?" two ways (`critique.refusal_probe`):
- yes_no: its P(yes) to "is the writer refusing to help?";
- likelihood: how much likelier it finds the response when asked to refuse the request
  than when asked the request;
and the bench prints each reading's ranking AUC against the rules' detectors (a safe
response: declines or redirects; and declines alone). 0.5 is chance.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.profiles import cached_outputs, experiment_lock  # noqa: E402
from stages.suites.refusal import declines, redirects  # noqa: E402
from stages.verdicts import ranking_auc  # noqa: E402
from stages.yes_no_judge import YesNoJudge  # noqa: E402


def main(name: str) -> None:
    from stages.engine import Engine
    from stages.models import load_checkpoint
    from stages.params import load_params

    model, tokenizer = load_checkpoint(ROOT / "models" / "r0")
    engine = Engine(model, tokenizer, load_params(ROOT / "params.yaml")["engine"])
    kinds = ("yes_no", "likelihood")
    judges = {k: YesNoJudge(engine, "r0", refusal_probe=k, harm_probe=k) for k in kinds}
    lock = experiment_lock(name, ROOT)
    print(f"campaign {name}: ranking AUC of the judge's readings (models/r0), yes_no / likelihood")
    print("round  items  safe  safe response    declines  | requests  harmful  harmful")
    for round_name, path in sorted(
        cached_outputs(lock, "critique", "verdicts.jsonl", ROOT).items()
    ):
        items = [json.loads(line) for line in path.read_text().splitlines()]
        items = [v for v in items if v.get("label")]
        safe = [declines(v["response"]) or redirects(v["response"]) for v in items]
        declined = [declines(v["response"]) for v in items]
        requests = list({v["query_id"]: v for v in items}.values())
        harmful = [v["label"] == "harmful" for v in requests]
        refuses = {k: judge._p_refuses(items) for k, judge in judges.items()}
        harm = {k: judge._p_harmful(requests) for k, judge in judges.items()}

        def both(readings, truth):
            return " / ".join(f"{ranking_auc(readings[k], truth):.3f}" for k in kinds)

        print(
            f"{round_name:<6} {len(items):>5}  {sum(safe):>4}  {both(refuses, safe)}"
            f"  {both(refuses, declined)}  | {len(requests):>8}  {sum(harmful):>7}"
            f"  {both(harm, harmful)}"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "safety-judge")
