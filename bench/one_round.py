"""Held-out accuracy after one training round on given pairs: a training change screened
without a full campaign (one train + one held-out evaluation, 3-5 minutes on 2 cores).

Trains a fresh adapter on a round's policy with params.yaml's `train` settings (override
any with `-S key=value`, value as JSON), merges it, and scores the held-out set greedily.

    python bench/one_round.py --policy r2 --pairs data/rounds/r3/pairs.jsonl
    python bench/one_round.py --policy r2 --pairs data/rounds/r3/pairs.jsonl \\
        --replay data/rounds/r2/pairs.jsonl          # with the round before replayed
    python bench/one_round.py --policy r2 --pairs data/rounds/r3/pairs.jsonl \\
        -S learning_rate=3e-4
    python bench/one_round.py --policy r0 --pairs pairs.jsonl \\
        --params CAMPAIGN/params.yaml --heldout CAMPAIGN/heldout.jsonl   # another campaign's
        # settings and held-out set (a profile's suite): per-suite, per-label rates too
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def overridden(section, specs: list[str]):
    """(`section` with each `KEY=JSON` of `specs` applied, the changes as a dict)."""
    changes = {}
    for spec in specs:
        key, _, value = spec.partition("=")
        changes[key] = json.loads(value)
    return dataclasses.replace(section, **changes), changes


def main() -> None:
    from stages.engine import Engine
    from stages.evaluate import evaluate
    from stages.params import load_params
    from stages.policy import load_policy, merge_adapter
    from stages.records import read_jsonl
    from stages.schema import PAIR, QUERY
    from stages.suites import load_suite
    from stages.train import train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="the round trained from, e.g. r2")
    parser.add_argument("--pairs", required=True, help="the round's own pairs")
    parser.add_argument("--replay", help="pairs replayed beside them")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"), help="params file")
    parser.add_argument(
        "--heldout", default=str(ROOT / "data/suite/heldout.jsonl"), help="held-out set"
    )
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=JSON")
    args = parser.parse_args()
    params = load_params(args.params)
    train_params, overrides = overridden(params["train"], args.overrides)
    pairs = read_jsonl(args.pairs, required=PAIR)
    replay = read_jsonl(args.replay, required=PAIR) if args.replay else []
    heldout = read_jsonl(args.heldout, required=QUERY)  # stage `suite` writes it
    models, rounds = ROOT / "models", params["rounds"]

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        adapter = Path(scratch) / "adapter"
        model, tokenizer = load_policy(args.policy, models, rounds)
        metrics = train(pairs, model, tokenizer, train_params, adapter, replay=replay)
        trained = time.perf_counter() - started
        model, tokenizer = load_policy(args.policy, models, rounds)
        model = merge_adapter(model, adapter)
    engine = Engine(model, tokenizer, params["engine"])
    suite = load_suite(params["suite"])
    _, scores = evaluate({"heldout": heldout}, engine, params["evaluate"], suite)
    result = {
        "policy": args.policy,
        "pairs": len(pairs),
        "replayed": len(replay),
        "overrides": overrides,
        "heldout_accuracy": round(scores["heldout"]["accuracy"], 3),
        "buckets": {b: round(a, 2) for b, a in scores["heldout"]["buckets"].items()},
        "suites": scores["heldout"].get("suites"),
        "train_seconds": round(trained, 1),
        "loss_first": metrics["loss_first"],
        "loss_last": metrics["loss_last"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
