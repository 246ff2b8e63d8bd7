from stages.evaluate import evaluate, score
from stages.params import EvaluateParams
from stages.suites import load_suite

SUITE = load_suite("arithmetic")


def q(i, gold, bucket="b"):
    return {"id": f"q{i}", "suite": "arithmetic", "prompt": f"p{i}", "gold": gold, "bucket": bucket}


def test_score_counts_accuracy_format_and_buckets():
    queries = [q(1, 3), q(2, 5), q(3, 7, "c"), q(4, 1, "c")]
    responses = ["1 + 2 = 3", "It is 6", "no idea", "1"]
    results, metrics = score("heldout", queries, responses, SUITE)
    assert [r["correct"] for r in results] == [True, False, False, True]
    assert metrics["accuracy"] == 0.5
    assert metrics["format_adherence"] == 0.75
    assert metrics["buckets"] == {"b": 0.5, "c": 0.5}
    assert 0 < metrics["distinct_2"] <= 1


def test_score_without_gold_has_no_accuracy():
    results, metrics = score("open", [q(1, None)], ["Sure."], SUITE)
    assert results[0]["correct"] is None
    assert "accuracy" not in metrics and metrics["items"] == 1


def test_evaluate_on_tiny_model(tiny_engine):
    sets = {"heldout": [q(i, i) for i in range(5)]}
    results, metrics = evaluate(sets, tiny_engine, EvaluateParams(max_new_tokens=4, limit=3), SUITE)
    assert len(results) == 3 and metrics["heldout"]["items"] == 3
    assert metrics["tokens_per_s"] > 0
