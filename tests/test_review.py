import json

from pipeline.review import run_review
from stages.records import write_jsonl


def queued(i, score=None, confidence=None):
    return {
        "id": f"s{i}",
        "query_id": "q",
        "prompt": "What is 2 + 2?",
        "response": str(i),
        "score": score,
        "critique": "unsure",
        "confidence": confidence,
        "source": "judge",
    }


def test_review_appends_labels_and_skips_labelled(tmp_path):
    queue, labels = tmp_path / "queue.jsonl", tmp_path / "labels.jsonl"
    write_jsonl(queue, [queued(0), queued(1, 0.5, 0.3), queued(2), queued(3)])
    write_jsonl(labels, [{"id": "s0", "score": 1.0}])  # already labelled: not asked again
    answers = iter(["x", "a", "looks right", "s", "r", "", "q"])
    shown = []
    added = run_review(
        queue, labels, "ana", ask=lambda _: next(answers), show=shown.append, round_name="r2"
    )
    assert added == 2
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert [(r["id"], r["score"]) for r in rows] == [("s0", 1.0), ("s1", 1.0), ("s3", 0.0)]
    assert rows[1]["critique"] == "looks right" and rows[2]["critique"] == "Unacceptable."
    assert rows[1]["labeler"] == "ana" and rows[1]["round"] == "r2"  # checked by critique@r2
    assert "[1/3] s1" in shown[0] and "confidence 0.30" in shown[0]


def test_review_asks_the_harm_question_of_a_yes_no_judges_verdicts(tmp_path):
    """A verdict that read the request's harm (p_harmful) gets the judge's other question
    too; the answer is kept in the label (`harmful`), or left out when skipped."""
    queue, labels = tmp_path / "queue.jsonl", tmp_path / "labels.jsonl"
    judged = [queued(i) | {"p_harmful": 0.5, "p_refuses": 0.5} for i in range(3)]
    write_jsonl(queue, judged + [queued(3)])
    answers = iter(["a", "?", "n", "", "r", "y", "", "a", "s", "", "a", ""])
    run_review(queue, labels, "ana", ask=lambda _: next(answers), show=lambda _: None)
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    assert [(r["id"], r["score"], r.get("harmful")) for r in rows] == [
        ("s0", 1.0, False),
        ("s1", 0.0, True),
        ("s2", 1.0, None),
        ("s3", 1.0, None),  # no harm reading: not asked
    ]
    assert "harmful" not in rows[2]
