"""Stage `suite`: the task's data, written where DVC and the other stages see it.

Whatever the suite's data comes from (a committed file, a seed, a user's JSON Lines file
or an installed package), it is read here, checked against the suite contract (unique
ids, attack pool disjoint from held-out, every held-out bucket attackable) and written to
one directory: heldout.jsonl, pool.jsonl, validation.jsonl (items per bucket kept from
the attacker, `suite.validation_per_bucket`; empty by default), seeds.jsonl,
transfer.jsonl (sets of another source no stage draws from; pool items that
near-duplicate one are dropped from the pool), rubric.md and suite.json (its sizes and
buckets). The stage is `always_changed` in dvc.yaml because its sources may
live outside DVC's view (a path in params, a package); it takes about a second, and the
stages after it rerun only when what it wrote changed.
"""

from __future__ import annotations

from .records import atomic_path, write_json, write_jsonl
from .stage import Stage, option, stage_main
from .suites import load_suite
from .suites.base import TRANSFER_OVERLAP, Suite, check_suite_data, describe, validation_split
from .text import near_duplicates_of

FILES = (
    "heldout.jsonl",
    "pool.jsonl",
    "validation.jsonl",
    "seeds.jsonl",
    "transfer.jsonl",
    "rubric.md",
    "suite.json",
)


def materialize(suite: Suite) -> dict:
    """Every file of the suite's directory, by name, checked (pure: no writing)."""
    heldout, transfer = suite.heldout(), suite.transfer()
    pool = suite.pool()
    echoes = near_duplicates_of([q["prompt"] for q in pool], [q["prompt"] for q in transfer],
                                TRANSFER_OVERLAP)
    pool = [q for q, echo in zip(pool, echoes) if not echo]
    pool, validation = validation_split(suite, pool, heldout, suite.params.validation_per_bucket)
    kept = {q["id"] for q in validation}
    seeds = [s for s in suite.seeds() if s.get("id") not in kept]  # seeds may be pool items
    check_suite_data(suite, heldout, pool, validation, transfer)
    return {
        "heldout.jsonl": heldout,
        "pool.jsonl": pool,
        "validation.jsonl": validation,
        "seeds.jsonl": seeds,
        "transfer.jsonl": transfer,
        "rubric.md": suite.rubric().strip() + "\n",
        "suite.json": describe(suite, heldout, pool, seeds)
        | {"validation": len(validation), "transfer": len(transfer), "pool_near_transfer": sum(echoes)},
    }


def write_suite_dir(out, files: dict) -> None:
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for name, content in files.items():
            if name.endswith(".jsonl"):
                write_jsonl(tmp / name, content)
            elif name.endswith(".json"):
                write_json(tmp / name, content)
            else:
                (tmp / name).write_text(content, encoding="utf-8")


@stage_main(
    "suite",
    __doc__,
    option("--data", required=True, help="where built-in suites keep their files (data/)"),
    option("--out", required=True, help="the directory to write (data/suite)"),
    round_of=lambda args, params: "r0",
    tracked=False,
)
def main(stage: Stage) -> None:
    suite = load_suite(stage.params["suite"], stage.args.data)
    files = materialize(suite)
    write_suite_dir(stage.args.out, files)
    facts = files["suite.json"]
    print(
        f"suite: {facts['name']} ({facts['source']}): {facts['heldout']} held out, "
        f"{facts['pool']} in the attack pool, draws from {facts['draws_from']}, "
        f"ground truth: {facts['ground_truth']}"
    )


if __name__ == "__main__":
    main()
