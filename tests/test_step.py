"""Step search (stages/step.py): the validation split it chooses on, the choice, the scaled
adapter, and one search on the tiny model."""

import pytest
import torch
from test_suites import labelled_rows, user_suite
from test_train import PARAMS, pairs

from stages.engine import EngineParams
from stages.errors import SuperalignError
from stages.models import load_checkpoint
from stages.params import EvaluateParams, SuiteParams, TrainParams, check_step_search
from stages.policy import merge_adapter
from stages.step import (
    choose_scale,
    group_rates,
    read_record,
    scale_adapter,
    search_step,
    validation_answering,
    validation_fingerprint,
    write_record,
)
from stages.suite import materialize
from stages.suites import load_suite
from stages.train import train

# --- the validation split -----------------------------------------------------------------


def test_validation_is_kept_from_the_pool_per_bucket_and_deterministic(tmp_path):
    suite = user_suite(tmp_path, labelled_rows(10), validation_per_bucket=3)
    files = materialize(suite)
    validation, pool, heldout = (
        files[f] for f in ("validation.jsonl", "pool.jsonl", "heldout.jsonl")
    )
    ids = [{q["id"] for q in part} for part in (validation, pool, heldout)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2])
    assert (
        sorted(q["bucket"] for q in validation) == ["cyber"] * 3 + ["idioms"] * 3 + ["weapons"] * 3
    )
    assert len(pool) + len(validation) == len(
        materialize(user_suite(tmp_path, labelled_rows(10)))["pool.jsonl"]
    )
    assert not {s["id"] for s in files["seeds.jsonl"]} & ids[0]
    assert materialize(suite)["validation.jsonl"] == validation
    assert files["suite.json"]["validation"] == 9
    # a small bucket keeps one item to attack with
    small = materialize(user_suite(tmp_path, labelled_rows(4), validation_per_bucket=5))
    assert {q["bucket"] for q in small["pool.jsonl"]} == {"cyber", "idioms", "weapons"}
    assert materialize(user_suite(tmp_path, labelled_rows(10)))["validation.jsonl"] == []


def test_generated_validation_items_are_never_attacked():
    suite = load_suite(SuiteParams(name="arithmetic", validation_per_bucket=5))
    files = materialize(suite)
    validation, heldout = files["validation.jsonl"], files["heldout.jsonl"]
    assert len(validation) == 5 * 8 and not {q["id"] for q in validation} & {
        q["id"] for q in heldout
    }
    ((source, _),) = suite.attack_sources([], heldout + validation)
    kept = {q["id"] for q in validation}
    for seed in range(20):
        drawn = source.draw({b: 30 for b in source.buckets}, seed)
        assert not {q["id"] for q in drawn} & kept


# --- the choice ---------------------------------------------------------------------------


def test_choose_the_best_mean_that_keeps_every_group_within_tolerance_of_the_base():
    rates = {
        0.0: {"harmful": 0.30, "benign": 1.00},
        0.5: {"harmful": 0.55, "benign": 0.97},
        1.0: {"harmful": 0.80, "benign": 0.80},  # best mean, but benign falls 0.20
    }
    base = rates[0.0]  # round 1: the previous policy is the base
    assert choose_scale(rates, base, tolerance=0.05) == 0.5
    assert choose_scale(rates, base, tolerance=0.25) == 1.0
    # a step that only does harm is not taken
    worse = {0.0: {"a": 0.5, "b": 0.5}, 1.0: {"a": 0.4, "b": 0.5}}
    assert choose_scale(worse, worse[0.0], tolerance=0.05) == 0.0
    # a tie goes to the larger step
    even = {0.0: {"a": 0.5}, 0.5: {"a": 0.5}, 1.0: {"a": 0.5}}
    assert choose_scale(even, even[0.0], 0.0) == 1.0
    with pytest.raises(ValueError, match="scale 0"):
        choose_scale({1.0: {"a": 1.0}}, {"a": 1.0}, 0.05)


def test_the_bound_is_the_campaigns_not_the_rounds():
    """A later round may not spend the tolerance again: the previous policy has already
    lost 0.05 of benign answers, so a step losing 0.02 more is refused, however much it
    gains on harmful requests; the previous policy stays."""
    base = {"harmful": 0.30, "benign": 1.00}
    rates = {0.0: {"harmful": 0.55, "benign": 0.95}, 0.5: {"harmful": 0.80, "benign": 0.93}}
    assert choose_scale(rates, base, tolerance=0.05) == 0.0
    assert choose_scale(rates, rates[0.0], tolerance=0.05) == 0.5  # measured per round


def test_groups_are_suites_and_labels():
    queries = [
        {"suite": "safety", "label": "harmful"},
        {"suite": "safety", "label": "benign"},
        {"suite": "safety", "label": "benign"},
        {"suite": "arithmetic"},
        {"suite": "open"},
    ]
    results = [{"correct": c} for c in (True, False, True, True, None)]
    assert group_rates(queries, results) == {
        "arithmetic": 1.0,
        "safety/benign": 0.5,
        "safety/harmful": 1.0,
    }


def test_step_params_are_checked():
    with pytest.raises(ValueError, match="step_scales"):
        TrainParams(step_scales=(1.0, 1.5))
    with pytest.raises(ValueError, match="step_scales"):
        TrainParams(step_scales=())
    with pytest.raises(ValueError, match="6 significant digits"):
        TrainParams(step_scales=(0.1234561, 0.1234562))
    assert not TrainParams().searches_step and TrainParams(step_scales=(1.0, 0.5)).searches_step
    with pytest.raises(ValueError, match="validation_per_bucket"):
        SuiteParams(validation_per_bucket=-1)


def test_a_weak_critic_may_not_search_steps_by_ground_truth():
    from stages.params import CritiqueParams

    searching, suite = TrainParams(step_scales=(1.0, 0.5)), SuiteParams(validation_per_bucket=4)
    with pytest.raises(SuperalignError, match="a llm_judge critic does not have"):
        check_step_search(searching, CritiqueParams(kind="llm_judge"), suite)
    with pytest.raises(SuperalignError, match="set suite.validation_per_bucket"):
        check_step_search(searching, CritiqueParams(kind="verifier"), SuiteParams())
    check_step_search(searching, CritiqueParams(kind="verifier"), suite)
    check_step_search(TrainParams(), CritiqueParams(kind="llm_judge"), SuiteParams())


# --- the scaled adapter and a search on the tiny model -----------------------------------


@pytest.fixture
def trained_adapter(tiny_model_dir, tmp_path):
    model, tokenizer = load_checkpoint(tiny_model_dir)
    train(pairs(), model, tokenizer, PARAMS, tmp_path / "adapter")
    return tmp_path / "adapter"


def merged_weights(tiny_model_dir, adapter=None):
    model = load_checkpoint(tiny_model_dir)[0]
    if adapter is not None:
        model = merge_adapter(model, adapter)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_scaled_adapter_moves_the_weights_by_that_share(tiny_model_dir, trained_adapter, tmp_path):
    base = merged_weights(tiny_model_dir)
    full = merged_weights(tiny_model_dir, trained_adapter)
    for scale in (0.5, 0.0):
        scale_adapter(trained_adapter, tmp_path / f"s{scale}", scale)
        scaled = merged_weights(tiny_model_dir, tmp_path / f"s{scale}")
        moved = [n for n in base if not torch.equal(base[n], full[n])]
        assert moved  # training changed something
        for n in moved:
            torch.testing.assert_close(
                scaled[n] - base[n], scale * (full[n] - base[n]), atol=1e-6, rtol=1e-4
            )
    scale_adapter(trained_adapter, tmp_path / "s1", 1.0)
    name = "adapter_model.safetensors"
    assert (tmp_path / "s1" / name).read_bytes() == (trained_adapter / name).read_bytes()


ENGINE = EngineParams(batch_size=16, dtype="float32")
EVALUATE = EvaluateParams(max_new_tokens=4)


def arithmetic_validation():
    suite = load_suite(SuiteParams(name="arithmetic", validation_per_bucket=2))
    return suite, materialize(suite)["validation.jsonl"]


def tiny_search(tiny_model_dir, adapter, scratch, known=None, load_base=None):
    """A search of scales 1 and 0.5 on the tiny model over arithmetic validation items."""
    suite, validation = arithmetic_validation()
    return search_step(
        adapter,
        (1.0, 0.5),
        0.05,
        validation,
        suite,
        lambda: load_checkpoint(tiny_model_dir),
        load_base,
        ENGINE,
        EVALUATE,
        scratch,
        known=known,
    )


def test_search_answers_validation_at_each_scale_and_keeps_one(
    tiny_model_dir, trained_adapter, tmp_path
):
    scale, report = tiny_search(tiny_model_dir, trained_adapter, tmp_path)
    assert set(report["step_validation"]) == {"scale_0", "scale_0.5", "scale_1"}
    assert scale == report["step_scale"] in (0.0, 0.5, 1.0)
    rates = {
        float(k.removeprefix("scale_")): {g: r for g, r in v.items() if g != "mean"}
        for k, v in report["step_validation"].items()
    }
    assert set(rates[0.0]) == {"arithmetic"} and report["step_base"] == rates[0.0]
    assert choose_scale(rates, rates[0.0], 0.05) == scale
    suite, _ = arithmetic_validation()
    with pytest.raises(SuperalignError, match="validation set, which is empty"):
        search_step(trained_adapter, (1.0, 0.5), 0.05, [], suite, None, None, None, None, tmp_path)


def test_the_next_round_reads_the_kept_policys_rates_instead_of_answering_again(
    tiny_model_dir, trained_adapter, tmp_path
):
    """A search stores the kept policy's rates and the base's beside the adapter; the next
    round's search takes them from there (under the same fingerprint only) and answers
    the set with the new scales alone."""
    _, validation = arithmetic_validation()
    fingerprint = validation_fingerprint(validation, ENGINE, EVALUATE)
    scale, report = tiny_search(tiny_model_dir, trained_adapter, tmp_path / "a")
    kept = tmp_path / "kept"
    scale_adapter(trained_adapter, kept, scale)
    write_record(kept, fingerprint, report)
    record = read_record(kept, fingerprint)
    assert record["base"] == report["step_base"] and not report["step_reused"]
    kept_rates = report["step_validation"][f"scale_{scale:g}"]
    assert record["rates"] == {g: r for g, r in kept_rates.items() if g != "mean"}

    # Rates that no model would give show they are read, not measured; the base is never loaded.
    known = {"rates": {"arithmetic": 0.125}, "base": {"arithmetic": 0.0625}}

    def no_base():
        raise AssertionError("the base was loaded although its rates were known")

    _, again = tiny_search(tiny_model_dir, trained_adapter, tmp_path / "b", known, no_base)
    assert again["step_reused"] and again["step_base"] == {"arithmetic": 0.0625}
    assert again["step_validation"]["scale_0"]["arithmetic"] == 0.125
    assert again["step_validation"]["scale_1"] == report["step_validation"]["scale_1"]

    # Measured another way, or unreadable: not reused.
    other = validation_fingerprint(validation, ENGINE, EvaluateParams(max_new_tokens=5))
    assert other != fingerprint and read_record(kept, other) is None
    assert validation_fingerprint(validation[1:], ENGINE, EVALUATE) != fingerprint
    (kept / "step_validation.json").write_text("{not json")
    assert read_record(kept, fingerprint) is None
    assert read_record(tmp_path / "nowhere", fingerprint) is None


def test_the_search_may_answer_validation_shorter_than_evaluate():
    """`train.step_max_new_tokens` caps the search's answers (not evaluate's), and a quick
    profile's `evaluate.limit` never cuts the validation set (a record measured another
    way is not reused: the next test)."""
    with pytest.raises(ValueError, match="step_max_new_tokens"):
        TrainParams(step_max_new_tokens=0)
    quick = EvaluateParams(max_new_tokens=48, limit=5)
    assert validation_answering(quick, None) == EvaluateParams(max_new_tokens=48, limit=None)
    assert validation_answering(quick, 24) == EvaluateParams(max_new_tokens=24, limit=None)
