"""Stage `prepare`: materialise the base learner as a plain safetensors checkpoint (round r0).

Whatever `learner.model` names (the embedded GGUF, a local directory, a hub id) becomes
one local checkpoint every later stage loads the same way, with no hub access.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .errors import one_line_errors
from .models import LearnerParams, load_base, resolve_model
from .params import DEFAULT_PARAMS, load_params
from .records import atomic_path, write_json
from .tracking import campaign_name, stage_run


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


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="checkpoint directory to write (models/r0)")
    parser.add_argument("--params", default=DEFAULT_PARAMS)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    with stage_run("prepare", "r0", campaign_name(params["tracking"].campaign)) as run:
        run.log_params({"learner": params["learner"]})
        facts = prepare(params["learner"], args.out)
        run.log_metrics({"parameters": facts["parameters"], "seconds": facts["seconds"]})
    print(f"prepare: {facts['source']} -> {args.out} ({facts['parameters']:,} parameters)")


if __name__ == "__main__":
    main()
