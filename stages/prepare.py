"""Stage `prepare`: materialise the base learner as a plain safetensors checkpoint (round r0).

Whatever `learner.model` names (the embedded GGUF, a local directory, a hub id) becomes
one local checkpoint every later stage loads the same way, with no hub access.
"""

from __future__ import annotations

import time
from pathlib import Path

from .models import LearnerParams, load_base, resolve_model
from .records import atomic_path, write_json, write_jsonl
from .stage import Stage, option, stage_main


def prepare(params: LearnerParams, out_dir: str | Path) -> dict:
    """Write the base checkpoint and tokenizer to `out_dir` atomically; returns its facts."""
    started = time.perf_counter()
    model, tokenizer = load_base(params)
    facts = {
        "source": params.model,
        "source_kind": resolve_model(params.model).kind,
        "parameters": sum(p.numel() for p in model.parameters()),
        "architecture": type(model).__name__,
    }
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "superalign.json", facts)
    facts["seconds"] = round(time.perf_counter() - started, 2)
    return facts


@stage_main(
    "prepare",
    __doc__,
    option("--out", required=True, help="checkpoint directory to write (models/r0)"),
    option("--trained-on", required=True, help="r0's trained-on pairs (none): round 1 replays it"),
    option("--labelled", required=True, help="r0's labelled verdicts (none): round 1 reads it"),
    logs=("learner",),
    round_of=lambda args, params: "r0",
    dvc_name=lambda round_name: "prepare",
)
def main(stage: Stage) -> None:
    facts = prepare(stage.params["learner"], stage.args.out)
    write_jsonl(stage.args.trained_on, [])  # the base learner was trained on no pairs here
    write_jsonl(stage.args.labelled, [])  # and no verdicts were labelled before round 1
    stage.run.log_metrics({"parameters": facts["parameters"], "seconds": facts["seconds"]})
    print(f"prepare: {facts['source']} -> {stage.args.out} ({facts['parameters']:,} parameters)")


if __name__ == "__main__":
    main()
