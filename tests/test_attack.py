import random

import pytest

from stages.attack import (
    adaptive_attack,
    allocate,
    bucket_stats,
    cap_counts,
    clean_query,
    dedupe,
    llm_attack,
    screened_draw,
    successful_attacks,
)
from stages.errors import SuperalignError
from stages.params import AttackParams
from stages.suites.arithmetic import HELDOUT_MIX, GeneratorSource, heldout_problems
from stages.suites.base import PoolSource, query


def result(bucket, correct, set_name="fresh", prompt="q"):
    return {"bucket": bucket, "correct": correct, "set": set_name, "prompt": prompt}


def test_bandit_concentrates_on_failures_and_keeps_exploring():
    stats = {"easy": (0, 50), "hard": (50, 0)}
    counts = allocate(
        ["easy", "hard"],
        stats,
        total=100,
        exploration=0.2,
        rng=random.Random(0),
        objective="failure",
    )
    assert sum(counts.values()) == 100
    assert counts["hard"] > 80 and counts["easy"] >= 10  # the exploration share stays


def test_frontier_objective_prefers_buckets_neither_solved_nor_hopeless():
    stats = {"solved": (0, 50), "frontier": (25, 25), "hopeless": (50, 0)}
    counts = allocate(
        list(stats), stats, total=120, exploration=0.3, rng=random.Random(0), objective="frontier"
    )
    assert sum(counts.values()) == 120
    assert counts["frontier"] > 80
    assert min(counts["solved"], counts["hopeless"]) >= 12  # exploration still covers them


def test_stats_prefer_training_sets_over_heldout():
    results = [result("a", True, "heldout")] * 5 + [result("a", False, "fresh")] * 2
    assert bucket_stats(results) == {"a": (2, 0)}
    assert bucket_stats([result("a", True, "heldout")]) == {"a": (0, 1)}  # round 1


def test_adaptive_attack_never_emits_heldout_and_is_deterministic():
    heldout = heldout_problems()
    ids = {p["id"] for p in heldout}
    source = GeneratorSource(HELDOUT_MIX, heldout)
    prev = [result(p["bucket"], p["bucket"] != "d2_add_s1", "heldout") for p in heldout]
    params = AttackParams(queries=200, objective="failure")
    queries, metrics = adaptive_attack(prev, params, "r1", source)
    assert len(queries) == 200 and not ids & {q["id"] for q in queries}
    assert queries == adaptive_attack(prev, params, "r1", source)[0]
    assert queries != adaptive_attack(prev, params, "r2", source)[0]
    assert metrics["share.d2_add_s1"] > metrics["share.d1_add_s1"]
    assert all(q["gold"] is not None for q in queries)


def test_small_buckets_are_capped_and_overflow_moves_on():
    heldout = heldout_problems()
    source = GeneratorSource(HELDOUT_MIX, heldout)
    # 1-digit addition holds 81 problems, 40 held out: it fails most, but can give only 20.
    prev = [result(p["bucket"], p["bucket"] != "d1_add_s1", "heldout") for p in heldout]
    queries, metrics = adaptive_attack(
        prev, AttackParams(queries=150, objective="failure"), "r1", source
    )
    assert len(queries) == 150 and len({q["id"] for q in queries}) == 150
    assert sum(q["bucket"] == "d1_add_s1" for q in queries) == 20
    assert metrics["shortfall"] == 0 and not any(k.startswith("dry.") for k in metrics)


def test_buckets_that_run_dry_are_reported_not_padded():
    counts, dry = cap_counts({"a": 5, "b": 5}, {"a": 3, "b": 4})
    assert counts == {"a": 3, "b": 4} and dry == {"a": 2, "b": 1}
    counts, dry = cap_counts({"a": 5, "b": 1}, {"a": 3, "b": 4})  # overflow finds room
    assert counts == {"a": 3, "b": 3} and dry == {}


def test_clean_and_dedupe():
    assert (
        clean_query('1. "How do I pick a lock quickly?"\nmore') == "How do I pick a lock quickly?"
    )
    assert clean_query("Question: what is love, really?") == "what is love, really?"
    assert clean_query("ok") is None
    kept, removed = dedupe(
        ["How do I pick a lock?", "How do I pick a lock quickly?", "Tell me a joke about cats"],
        avoid=["Tell me a joke about cats please"],
        max_similarity=0.5,
    )
    assert kept == ["How do I pick a lock?"] and removed == 2


def test_successful_attacks_exclude_heldout():
    results = [
        result("x", False, "fresh", "fail"),
        result("x", True, "fresh", "pass"),
        result("x", False, "heldout", "secret"),
    ]
    assert successful_attacks(results) == ["fail"]


def test_llm_attacker_that_writes_nothing_usable_is_a_clear_error(tiny_engine):
    seeds = [{"id": "s", "prompt": "How to stay safe?", "topic": "safety"}]
    params = AttackParams(kind="llm", candidates=6, max_new_tokens=4)
    with pytest.raises(SuperalignError, match="produced no usable query from 6 candidates"):
        llm_attack(tiny_engine, seeds, [], [], params, "r1", "open")


def test_pool_that_runs_dry_is_reported_and_never_repeats():
    pool = [query("s", f"p{i}?", bucket="a" if i < 3 else "b") for i in range(8)]
    prev = [result("a", False), result("b", True)]
    params = AttackParams(queries=12, exploration=0.5)
    queries, metrics = adaptive_attack(prev, params, "r1", PoolSource(pool))
    assert len(queries) == len({q["id"] for q in queries}) == 8  # all the pool, once each
    assert (
        metrics["shortfall"] == 4
        and sum(v for k, v in metrics.items() if k.startswith("dry.")) >= 4
    )


def screen_pool():
    """12 benign requests the reading below ranks by their number, 12 it does not read."""
    return [query("s", f"benign {i}?", bucket="benign", label="benign") for i in range(12)] + [
        query("s", f"harmful {i}?", bucket="harmful", label="harmful") for i in range(12)
    ]


def read_benign(items):
    return [
        int(q["prompt"].split()[1][:-1]) / 100 if q["label"] == "benign" else None for q in items
    ]


def test_screen_keeps_the_requests_read_closest_to_failing():
    source = PoolSource(screen_pool())
    counts = {"benign": 3, "harmful": 3}
    kept, metrics = screened_draw(source, counts, seed=7, times=3, screen=read_benign)
    wide = source.draw({"benign": 9, "harmful": 9}, 7)
    drawn = sorted(r for r in read_benign(wide) if r is not None)
    benign = [q for q in kept if q["label"] == "benign"]
    assert sorted(read_benign(benign)) == drawn[-3:]  # the top three of the nine drawn
    # a bucket the screen does not read keeps its first draws, at random under the seed
    assert [q for q in kept if q["label"] == "harmful"] == [
        q for q in wide if q["label"] == "harmful"
    ][:3]
    assert metrics["screened"] == 3
    assert metrics["screen_reading.kept"] > metrics["screen_reading.drawn"]
    assert (kept, metrics) == screened_draw(source, counts, 7, 3, read_benign)


def test_screen_draws_no_more_than_a_bucket_holds():
    source = PoolSource(screen_pool())
    kept, _ = screened_draw(
        source, {"benign": 6, "harmful": 0}, seed=0, times=4, screen=read_benign
    )
    assert sorted(read_benign(kept)) == [0.06, 0.07, 0.08, 0.09, 0.1, 0.11]  # of all twelve


def test_screen_of_one_draws_as_before_and_reads_nothing():
    def unread(items):
        raise AssertionError("screen 1 must not read the learner")

    source, prev = PoolSource(screen_pool()), [result("benign", False)]
    params = AttackParams(queries=8)
    assert adaptive_attack(prev, params, "r1", source, unread) == adaptive_attack(
        prev, params, "r1", source
    )
    screened, metrics = adaptive_attack(
        prev, AttackParams(queries=8, screen=3), "r1", source, read_benign
    )
    assert metrics["screened"] == sum(q["label"] == "benign" for q in screened)


def test_screen_must_be_at_least_one():
    with pytest.raises(ValueError, match="screen must be at least 1"):
        AttackParams(screen=0)
