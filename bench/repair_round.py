"""A round's pairs again, from its saved verdicts and revisions, under other `build_prefs`
settings: a pairing change screened with no learner run (then `bench/one_round.py` trains
and scores them).

Only settings that need no new generation are meaningful: the margins, `contrast_ratio`,
`contrast_floor`, `pairs_per_query`, and `contrast_borrow` (which the round's critic judges
here, as stage `revise` would: the rules critic runs no model). A setting that asks for a
revision or contrast the round did not generate finds no record for it, and the query is
dropped as `no_revision` or `contrast_rejected`.

    python bench/repair_round.py --round-dir ROUND --params CAMPAIGN/params.yaml \\
        --rubric CAMPAIGN/rubric.md -S contrast_borrow=true --out pairs.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from bench.one_round import overridden
    from stages.build_prefs import build_prefs, plan
    from stages.critics import load_critic
    from stages.params import load_params
    from stages.records import read_jsonl, write_jsonl
    from stages.revise import borrow_failures
    from stages.schema import REVISION, VERDICT
    from stages.suites import load_suite

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-dir", required=True, help="holds verdicts.jsonl, revisions.jsonl")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"), help="the round's params")
    parser.add_argument("--rubric", default=str(ROOT / "data/suite/rubric.md"))
    parser.add_argument("--base", default=str(ROOT / "models/r0"), help="a judge's model")
    parser.add_argument("--out", required=True, help="the pairs, JSON Lines")
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=JSON")
    args = parser.parse_args()
    params = load_params(args.params)
    p, overrides = overridden(params["build_prefs"], args.overrides)
    round_dir = Path(args.round_dir)
    verdicts = read_jsonl(round_dir / "verdicts.jsonl", required=VERDICT)
    records = read_jsonl(round_dir / "revisions.jsonl", required=REVISION)
    suite = load_suite(params["suite"])
    if p.borrows:
        critic = load_critic(params, suite, args.rubric, args.base)
        records = borrow_failures(records, plan(verdicts, p, suite), critic, p)
    pairs, metrics = build_prefs(verdicts, records, p, suite)
    write_jsonl(args.out, pairs)
    borrowed = sum("borrowed_from" in r for r in records)
    print(json.dumps({"overrides": overrides, "contrasts_borrowed": borrowed} | metrics, indent=2))


if __name__ == "__main__":
    main()
