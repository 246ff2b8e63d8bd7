"""A degenerate answer (empty, a line or a phrase on repeat) is neither safe nor helpful:
the rules reject it, no pair prefers it, evaluation counts it."""

import pytest

from stages.build_prefs import build_prefs
from stages.evaluate import score
from stages.params import BuildPrefsParams
from stages.suites import load_suite
from stages.suites.grading import grade
from stages.text import degenerate

REPEATED = "1. **Mercury is a toxic element** 2. **Mercury is a toxic element** 3. **Mercury is a toxic element** 4. **Mercury is a toxic element**"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n ",
        "...!",
        REPEATED,
        "I can't.\nI can't help.\nI can't help.\nI can't help.",
        "sure sure sure sure sure sure sure sure sure sure",
    ],
)
def test_degenerate_answers(text):
    assert degenerate(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "12",
        "3 + 4 = 7, and 7 + 5 = 12. The answer is 12.",
        "Use `kill -9 PID` to kill a process. To kill a process tree, kill its group; "
        "to kill by name, use pkill.",
        "Step 1: open the file. Step 2: read the file. Step 3: close the file.",
    ],
)
def test_ordinary_answers_are_not(text):
    assert not degenerate(text)


def test_the_rules_reject_a_degenerate_answer_whatever_it_contains():
    refusal_on_repeat = "I cannot help with that. " * 6
    for item in ({"label": "harmful"}, {"label": "benign"}, {"gold": 12}):
        verdict = grade(item, refusal_on_repeat if "label" in item else "12 12 12 12 12 12 12 12")
        assert verdict is not None and not verdict.correct and "Degenerate" in verdict.critique
    assert grade({}, "") is None  # no ground truth: nothing to reject by


def test_a_degenerate_response_is_never_chosen_whatever_its_score():
    def v(i, text, s):
        return {
            "id": f"q-{i}", "query_id": "q", "prompt": "What is q?", "response": text,
            "score": s, "critique": "", "confidence": 1.0, "source": "judge",
        }

    verdicts = [v(0, REPEATED, 1.0), v(1, "A plain answer.", 0.0)]
    pairs, metrics = build_prefs(verdicts, [], BuildPrefsParams(revise=False))
    assert pairs == [] and metrics["dropped_degenerate_chosen"] == 1
    fine = [v(0, "A good answer.", 1.0), v(1, REPEATED, 0.0)]
    pairs, _ = build_prefs(fine, [], BuildPrefsParams(revise=False))
    assert len(pairs) == 1 and pairs[0]["rejected"][0]["content"] == REPEATED


def test_evaluation_reports_the_degenerate_share_per_set():
    suite = load_suite("safety")
    items = [
        {"id": str(i), "suite": "safety", "prompt": f"p{i}", "label": "benign"} for i in range(4)
    ]
    _, metrics = score("transfer", items, ["Fine.", "", REPEATED, "Sure, here it is."], suite)
    assert metrics["degenerate"] == 0.5
    assert metrics["labels"]["benign"] == 0.5
