import json

import pytest

from stages.build_prefs import build_prefs, plan
from stages.critics import NoisyCritic
from stages.engine import Generations
from stages.params import BuildPrefsParams, SuiteParams
from stages.records import write_jsonl
from stages.revise import repeats_critique, revise, revise_metrics, revision_chat
from stages.suites import load_suite
from stages.suites.grading import label_grade


def revise_then_pair(verdicts, params, engine, critic, suite=None):
    """Stage revise, then stage build_prefs, as the DAG runs them."""
    revisions = revise(plan(verdicts, params, suite), engine, critic, params)
    return build_prefs(verdicts, revisions, params, suite)


def labelled_group(query, label, bucket, responses, scores, suite="safety"):
    """One query's verdicts, a sample per (response, score), with its label and bucket."""
    extra = {"label": label, "bucket": bucket, "suite": suite}
    return [
        verdict(query, i, s, text) | extra
        for i, (text, s) in enumerate(zip(responses, scores, strict=True))
    ]


def verdict(query, i, score, response=None):
    return {
        "id": f"{query}-{i}",
        "query_id": query,
        "prompt": f"What is {query}?",
        "gold": 7,
        "response": response or f"answer {i}",
        "score": score,
        "critique": "Incorrect.",
        "confidence": 1.0,
        "source": "t",
    }


def test_best_vs_worst_with_margin_and_nulls_dropped():
    verdicts = [
        verdict("a", 0, 1.0),
        verdict("a", 1, 0.0),
        verdict("a", 2, 0.0),
        verdict("b", 0, 1.0),
        verdict("b", 1, 0.75),  # margin too small
        verdict("c", 0, None),
        verdict("c", 1, None),  # the critic said nothing
    ]
    pairs, metrics = build_prefs(verdicts, [], BuildPrefsParams(revise=False))
    assert len(pairs) == 1
    (p,) = pairs
    assert p["prompt"] == [{"role": "user", "content": "What is a?"}]
    assert p["chosen"] == [{"role": "assistant", "content": "answer 0"}]
    assert p["rejected"][0]["content"] in {"answer 1", "answer 2"}
    assert metrics["dropped_small_margin"] == 1 and metrics["dropped_no_verdict"] == 1


def test_pairs_are_minimal_concise_chosen_and_rejected_of_like_length():
    verdicts = [
        verdict("a", 0, 1.0, "Let me think. 3 + 4 is seven, so the answer is 7."),
        verdict("a", 1, 1.0, "3 + 4 = 7"),
        verdict("a", 2, 0.0, "3 + 4 = 8"),
        verdict("a", 3, 0.0, "To solve this we need to think about what addition means " * 2),
    ]
    (p,), _ = build_prefs(verdicts, [], BuildPrefsParams(revise=False))
    assert p["chosen"][0]["content"] == "3 + 4 = 7"
    assert p["rejected"][0]["content"] == "3 + 4 = 8"


def test_more_pairs_per_query_use_the_other_samples_first_pair_unchanged():
    verdicts = [
        verdict("a", 0, 1.0, "3 + 4 = 7"),
        verdict("a", 1, 1.0, "It is 7."),
        verdict("a", 2, 0.0, "3 + 4 = 8"),
        verdict("a", 3, 0.0, "3 + 4 = 8"),  # the same text twice is one pair, not two
        verdict("a", 4, 0.0, "Nine."),
    ]
    one, _ = build_prefs(verdicts, [], BuildPrefsParams(revise=False))
    many, metrics = build_prefs(verdicts, [], BuildPrefsParams(revise=False, pairs_per_query=9))
    assert many[0] == one[0]
    texts = [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in many]
    assert len(texts) == len(set(texts)) == 4  # 2 distinct chosen x 2 distinct rejected
    assert len({p["id"] for p in many}) == 4 and metrics["pairs"] == 4
    capped, _ = build_prefs(verdicts, [], BuildPrefsParams(revise=False, pairs_per_query=2))
    assert capped == many[:2]


def test_pairs_from_the_decision_pair_what_a_soft_judge_accepts_against_what_it_rejects():
    """`pairs_from: decision`: a judge's soft scores seldom tie, so best- against
    worst-scored gives one pair a query; accepted against rejected gives as many as a 0/1
    critic would, each pair by the margin. With 0/1 scores the two are the same."""
    soft = [
        verdict("a", 0, 0.9, "No."),
        verdict("a", 1, 0.6, "I can't."),
        verdict("a", 2, 0.45, "Sure, here."),  # 0.6 - 0.45 is under the margin
        verdict("a", 3, 0.2, "Sure, step one."),
        verdict("a", 4, 0.3, "Sure: first"),
    ]
    extremes = BuildPrefsParams(revise=False, min_margin=0.2, pairs_per_query=9)
    one, _ = build_prefs(soft, [], extremes)
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in one] == [
        ("No.", "Sure, step one.")
    ]
    decision = BuildPrefsParams(
        revise=False, min_margin=0.2, pairs_per_query=9, pairs_from="decision"
    )
    many, _ = build_prefs(soft, [], decision)
    texts = {(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in many}
    assert texts == {
        ("No.", "Sure, here."),
        ("No.", "Sure, step one."),
        ("No.", "Sure: first"),
        ("I can't.", "Sure, step one."),
        ("I can't.", "Sure: first"),
    }
    assert all(p["margin"] >= 0.2 for p in many)
    assert {round(p["margin"], 2) for p in many} == {0.45, 0.7, 0.6, 0.4, 0.3}

    binary = [verdict("b", i, float(i < 2), f"answer {'x' * i}") for i in range(5)]
    for limit in (1, 3, 9):
        same = [
            BuildPrefsParams(revise=False, pairs_per_query=limit, pairs_from=f)
            for f in ("extremes", "decision")
        ]
        assert build_prefs(binary, [], same[0]) == build_prefs(binary, [], same[1])


def test_a_revision_from_the_decision_is_paired_with_every_sample_it_beats_by_the_margin():
    from stages.build_prefs import plan

    group = [verdict("a", 0, 0.4, "Sure."), verdict("a", 1, 0.1, "Sure!"), verdict("a", 2, 0.3)]
    revision = {"kind": "revision", "query_id": "a", "score": 0.55, "response": "I won't."}
    for pairs_from, rejected in (("extremes", {"Sure!"}), ("decision", {"Sure!", "answer 2"})):
        params = BuildPrefsParams(min_margin=0.2, pairs_per_query=3, pairs_from=pairs_from)
        assert len(plan(group, params).to_revise) == 1
        pairs, _ = build_prefs(group, [revision], params)
        assert {p["rejected"][0]["content"] for p in pairs} == rejected
        assert {p["chosen"][0]["content"] for p in pairs} == {"I won't."}


def test_revision_pairs_against_each_failing_sample(tiny_engine):
    verdicts = [verdict("a", i, 0.0, f"wrong {'x' * i}") for i in range(3)]
    accepting = NoisyCritic(load_suite("arithmetic"), flip_rate=1.0)
    params = BuildPrefsParams(max_new_tokens=6, pairs_per_query=2)
    pairs, metrics = revise_then_pair(verdicts, params, tiny_engine, accepting)
    assert metrics["revised_queries"] == 1 and metrics["revision_pairs"] == 2
    assert len({p["chosen"][0]["content"] for p in pairs}) == 1  # one revision
    assert len({p["rejected"][0]["content"] for p in pairs}) == 2


def test_revision_request_is_the_question_with_the_critique():
    chat = revision_chat(verdict("a", 0, 0.0) | {"critique": "Wrong: the answer is 7."})
    assert chat == [
        {
            "role": "user",
            "content": "What is a?\n\nA reviewer checked an earlier answer to this question: "
            "Wrong: the answer is 7.",
        }
    ]


def test_critique_guided_revision_becomes_chosen(tiny_engine):
    verdicts = [verdict("a", 0, 0.0), verdict("a", 1, 0.0), verdict("b", 0, 0.0)]
    accepting = NoisyCritic(load_suite("arithmetic"), flip_rate=1.0)  # accepts every wrong revision
    pairs, metrics = revise_then_pair(
        verdicts, BuildPrefsParams(max_new_tokens=6), tiny_engine, accepting
    )
    assert metrics["revisions_tried"] == 2 and metrics["revision_pairs"] == 2
    assert metrics["revision_share"] == 1.0
    assert all(p["kind"] == "revision" for p in pairs)
    rejecting = NoisyCritic(
        load_suite("arithmetic"), flip_rate=0.0
    )  # the random revisions are wrong: rejected
    pairs, metrics = revise_then_pair(
        verdicts, BuildPrefsParams(max_new_tokens=6), tiny_engine, rejecting
    )
    assert pairs == [] and metrics["dropped_revision_rejected"] == 2


def test_pairs_load_with_datasets_as_trl_conversational(tmp_path):
    from datasets import load_dataset

    pairs, _ = build_prefs([verdict("a", 0, 1.0), verdict("a", 1, 0.0)], [], BuildPrefsParams())
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, pairs)
    ds = load_dataset("json", data_files=str(path), split="train")
    assert ds[0]["chosen"][0]["role"] == "assistant"
    assert json.loads(path.read_text())["prompt"][0]["role"] == "user"


def test_relative_preferences_for_weak_judges():
    # A weak judge that finds nothing acceptable but still ranks answers.
    verdicts = [
        verdict("a", 0, 0.30),
        verdict("a", 1, 0.10),
        verdict("b", 0, 0.2),
        verdict("b", 1, 0.19),
    ]
    strict, _ = build_prefs(verdicts, [], BuildPrefsParams(min_margin=0.1, revise=False))
    assert strict == []
    relative = BuildPrefsParams(min_margin=0.1, revise=False, require_acceptable=False)
    pairs, metrics = build_prefs(verdicts, [], relative)
    assert [p["chosen"][0]["content"] for p in pairs] == ["answer 0"]
    assert metrics["dropped_no_revision"] == 1  # b's margin is too small


def test_benign_answers_are_contrasted_with_the_learners_own_refusal(tiny_engine):
    """Every answer to a benign request was fine, but the learner failed elsewhere in the
    same bucket this round: it is asked for its refusal, and when the critic rejects that,
    the best answer is paired against it. A bucket with no failure gets no contrast."""
    safety = load_suite("safety")

    class RejectsAll:
        name = "rejects"

        def judge(self, items):
            verdicts = [{"score": 0.0, "critique": "Refused.", "confidence": 1.0, "source": "r"}]
            return verdicts * len(items)

    def benign(query, bucket, score):
        extra = {"label": "benign", "bucket": bucket, "prompt": f"How do I kill {query}?"}
        return [verdict(query, i, score) | extra for i in range(2)]

    verdicts = benign("k", "tech", 1.0) + benign("f", "tech", 0.0) + benign("q", "quiet", 1.0)
    params = BuildPrefsParams(max_new_tokens=6, revise=False)
    pairs, metrics = revise_then_pair(verdicts, params, tiny_engine, RejectsAll(), safety)
    assert [p["kind"] for p in pairs] == ["contrast"] and pairs[0]["query_id"] == "k"
    assert pairs[0]["chosen"][0]["content"] in {"answer 0", "answer 1"}
    assert metrics["contrast_pairs"] == 1 and metrics["dropped_small_margin"] == 1  # "quiet"
    both = BuildPrefsParams(max_new_tokens=6, revise=False, pairs_per_query=4)
    pairs, metrics = revise_then_pair(verdicts, both, tiny_engine, RejectsAll(), safety)
    chosen = sorted(p["chosen"][0]["content"] for p in pairs)  # each answer vs the refusal
    assert chosen == ["answer 0", "answer 1"] and metrics["contrasted_queries"] == 1
    assert len({p["rejected"][0]["content"] for p in pairs}) == 1
    everywhere = BuildPrefsParams(max_new_tokens=6, revise=False, contrast_in="all")
    pairs, metrics = revise_then_pair(verdicts, everywhere, tiny_engine, RejectsAll(), safety)
    assert sorted(p["query_id"] for p in pairs) == ["k", "q"]  # "quiet" too
    assert metrics["dropped_small_margin"] == 0
    off = BuildPrefsParams(max_new_tokens=6, revise=False, contrast=False)
    assert revise_then_pair(verdicts, off, tiny_engine, RejectsAll(), safety)[0] == []


def test_a_contrast_the_learner_would_not_fail_borrows_its_failure_on_another_request(
    tiny_engine,
):
    """With `contrast_borrow`, a benign request whose elicited "refusal" the critic read
    as an answer takes the refusal the learner did give on another request of the round
    (its own bucket first), judged again on this request; it is paired only if the critic
    rejects it here too. Off, such a contrast is dropped as before."""
    safety = load_suite("safety")

    class RejectsOneText:
        """Judging the elicited contrasts, fails only query "k"'s (the refusal that
        worked); judging again, fails that text, except on the request "ok"."""

        name = "one-text"
        failure, calls = None, 0

        def judge(self, items):
            out, again = [], self.calls > 0
            self.calls += 1
            for item in items:
                if again:
                    fails = item["response"] == self.failure and item["query_id"] != "ok"
                else:
                    fails = item["query_id"] == "k"
                    self.failure = item["response"] if fails else self.failure
                out.append(
                    {"score": 0.0 if fails else 1.0, "critique": "c", "confidence": 1.0}
                    | {"source": "rules"}
                )
            return out

    def benign(query, bucket):
        extra = {"label": "benign", "bucket": bucket, "prompt": f"How do I kill {query}?"}
        return [verdict(query, i, 1.0) | extra for i in range(2)]

    verdicts = benign("k", "tech") + benign("m", "tech") + benign("q", "quiet")
    verdicts += benign("ok", "quiet")
    borrow = BuildPrefsParams(max_new_tokens=6, contrast_in="all", contrast_borrow=True)
    todo = plan(verdicts, borrow, safety)
    critic = RejectsOneText()
    records = revise(todo, tiny_engine, critic, borrow)
    by_query = {r["query_id"]: r for r in records}
    assert [r["query_id"] for r in records] == ["k", "m", "q", "ok"]  # plan order kept
    assert "borrowed_from" not in by_query["k"]  # its own refusal worked
    for query in ("m", "q"):  # same bucket as the donor, and another bucket
        record = by_query[query]
        assert record["borrowed_from"] == "k" and record["score"] == 0.0
        assert record["response"] == critic.failure and "elicited_response" in record
        assert record["request"] == by_query["k"]["request"]
    assert "borrowed_from" not in by_query["ok"] and by_query["ok"]["score"] == 1.0
    assert len({r["id"] for r in records}) == 4
    pairs, metrics = build_prefs(verdicts, records, borrow, safety)
    assert sorted(p["query_id"] for p in pairs) == ["k", "m", "q"]
    assert {p["rejected"][0]["content"] for p in pairs} == {critic.failure}
    assert metrics["dropped_contrast_rejected"] == 1  # "ok": the borrowed text passed there
    assert revise_metrics(records)["contrasts_borrowed"] == 2
    off = BuildPrefsParams(max_new_tokens=6, contrast_in="all")
    critic = RejectsOneText()
    records = revise(plan(verdicts, off, safety), tiny_engine, critic, off)
    assert not any("borrowed_from" in r for r in records)
    pairs, metrics = build_prefs(verdicts, records, off, safety)
    assert [p["query_id"] for p in pairs] == ["k"] and metrics["dropped_contrast_rejected"] == 3


def test_revise_records_carry_their_verdict_and_build_prefs_needs_no_model(tiny_engine):
    """Stage revise writes what it asked for, judged; build_prefs pairs from the records
    alone (no engine, no critic), and a record it does not find is a dropped query."""
    verdicts = [
        verdict("a", 0, 0.0),
        verdict("a", 1, 0.0),
        verdict("b", 0, 1.0),
        verdict("b", 1, 0.0),
    ]
    params = BuildPrefsParams(max_new_tokens=6)
    todo = plan(verdicts, params)
    assert [lowest[0]["query_id"] for _, lowest in todo.to_revise] == ["a"]
    assert [p["query_id"] for p in todo.pairs] == ["b"]
    accepting = NoisyCritic(load_suite("arithmetic"), flip_rate=1.0)
    (record,) = revise(todo, tiny_engine, accepting, params)
    assert record["kind"] == "revision" and record["query_id"] == "a"
    assert record["answers_for"] in {"a-0", "a-1"} and record["score"] == 1.0
    assert record["request"].startswith("What is a?\n\nA reviewer checked")
    pairs, metrics = build_prefs(verdicts, [record], params)
    assert [p["kind"] for p in pairs] == ["best_vs_worst", "revision"]
    assert pairs[1]["chosen"][0]["content"] == record["response"]
    _, metrics = build_prefs(verdicts, [], params)
    assert metrics["dropped_no_revision"] == 1 and metrics["pairs"] == 1


def test_contrast_ratio_caps_contrasts_per_harmful_pair_failing_buckets_first():
    """`contrast_ratio` keeps at most that many contrast pairs per pair on a harmful
    request: whole queries, those in buckets that failed this round first, in plan order."""

    def labelled(query, label, bucket, scores):
        extra = {"label": label, "bucket": bucket}
        return [verdict(query, i, s) | extra for i, s in enumerate(scores)]

    verdicts = (
        labelled("q1", "benign", "quiet", [1.0, 1.0])
        + labelled("h1", "harmful", "weapons", [1.0, 0.0])
        + labelled("k1", "benign", "tech", [1.0, 1.0])
        + labelled("h2", "harmful", "weapons", [1.0, 0.0])
        + labelled("q2", "benign", "quiet", [1.0, 1.0])
        + labelled("f", "benign", "tech", [0.0, 0.0])  # the failure that makes "tech" failing
    )
    refusals = [
        {"kind": "contrast", "query_id": q, "response": "Sorry, I can't.", "score": 0.0}
        for q in ("q1", "k1", "q2")
    ]

    def contrasted(ratio):
        params = BuildPrefsParams(revise=False, contrast_in="all", contrast_ratio=ratio)
        pairs, metrics = build_prefs(verdicts, refusals, params, load_suite("safety"))
        assert metrics["dropped_contrast_capped"] == 3 - metrics["contrasted_queries"]
        return [p["query_id"] for p in pairs if p["kind"] == "contrast"]

    assert contrasted(None) == ["q1", "k1", "q2"]
    assert contrasted(1.0) == ["q1", "k1"]  # two harmful pairs: k1 (failing bucket) first
    assert contrasted(0.5) == ["k1"]
    assert contrasted(0.0) == []

    def filled(floor):
        params = BuildPrefsParams(revise=False, contrast_in="all", contrast_floor=floor)
        pairs, _ = build_prefs(verdicts, refusals, params, load_suite("safety"))
        return [p["query_id"] for p in pairs if p["kind"] == "contrast"]

    assert filled(0.0) == ["k1"]  # the failing bucket's contrast is kept whatever the floor
    assert filled(1.0) == ["q1", "k1"]  # the rest fill in up to 1 per harmful pair (2)
    assert filled(2.0) == ["q1", "k1", "q2"]
    with pytest.raises(ValueError, match="contrast_floor .* needs contrast_in: all"):
        BuildPrefsParams(contrast_floor=0.25)


def test_a_mirror_contrast_rejects_on_a_benign_request_the_decline_chosen_on_a_harmful_one(
    tiny_engine,
):
    """With `contrast_mirror`, a benign request whose elicited refusal the critic read as
    an answer takes a response the critic accepted on a harmful request this round (a
    sample, or an accepted revision), judged again on this request: the round's pairs then
    prefer that very text on the harmful request and reject it on the benign one. Queries
    of another suite of the mixture give no donor; without the flag nothing is borrowed."""
    mixed = load_suite(SuiteParams(name="safety", mix={"arithmetic": 0.25}))
    decline = "I can't help with that; it could hurt someone."

    class ReadsDeclines:
        """Accepts a decline only on a harmful request, and anything else elsewhere: the
        rules' verdict, with every elicited "refusal" of the tiny model read as an answer."""

        name = "reads-declines"
        declines = {decline}

        def judge(self, items):
            out = []
            for item in items:
                if item["query_id"] == "r":  # the tiny model's revision of "r" declines
                    self.declines.add(item["response"])
                declines = item["response"] in self.declines
                ok = declines == (item["label"] == "harmful") or item["label"] is None
                out.append({"score": float(ok), "critique": "c", "confidence": 1.0})
            return out

    verdicts = labelled_group("h", "harmful", "weapons", [decline, "Sure: first ..."], [1.0, 0.0])
    verdicts += labelled_group(
        "r", "harmful", "fraud", ["Sure, here is how", "Step one"], [0.0, 0.0]
    )
    verdicts += labelled_group(
        "b", "benign", "tech", ["Press Ctrl+C, or run kill PID.", "Use kill."], [1.0, 1.0]
    )
    verdicts += labelled_group("s", None, "sums", ["7", "7"], [1.0, 1.0], suite="arithmetic")
    mirror = BuildPrefsParams(max_new_tokens=6, contrast_in="all", contrast_mirror=True)
    todo = plan(verdicts, mirror, mixed)
    assert set(todo.mirrored) == {"h", "r", "s"}  # none asks for a contrast of its own
    assert [v["response"] for v in todo.mirrored["h"]] == [decline]  # accepted samples only
    assert todo.mirrored["r"] == []  # no accepted sample: its revision may still donate
    records = revise(todo, tiny_engine, ReadsDeclines(), mirror)
    (contrast,) = [r for r in records if r["kind"] == "contrast"]
    (revision,) = [r for r in records if r["kind"] == "revision"]
    assert revision["score"] == 1.0  # the revision of "r" declines: a donor as well
    assert contrast["borrowed_from"] in {"h", "r"} and contrast["score"] == 0.0
    assert contrast["response"] in {decline, revision["response"]}
    assert contrast["request"] in {"What is h?", "What is r?"}
    pairs, metrics = build_prefs(verdicts, records, mirror, mixed)
    rejected_on_benign = {p["rejected"][0]["content"] for p in pairs if p["query_id"] == "b"}
    chosen_on_harmful = {p["chosen"][0]["content"] for p in pairs if p["query_id"] in "hr"}
    assert rejected_on_benign == {contrast["response"]} <= chosen_on_harmful
    assert metrics["contrast_pairs"] == 1 and metrics["dropped_contrast_rejected"] == 0
    for off in (
        BuildPrefsParams(max_new_tokens=6, contrast_in="all"),
        BuildPrefsParams(max_new_tokens=6, contrast_in="all", contrast_borrow=True),
    ):  # borrowing among elicited contrasts alone: no donor, none of them failed
        records = revise(plan(verdicts, off, mixed), tiny_engine, ReadsDeclines(), off)
        assert not any("borrowed_from" in r for r in records)
        assert build_prefs(verdicts, records, off, mixed)[1]["contrast_pairs"] == 0


# what the rules critic (and the yes/no judge) writes for a harmful compliance
SAFETY_CRITIQUE = label_grade("harmful", declined=False).critique


@pytest.mark.parametrize(
    "text, critique, copied",
    [
        (
            'A helpful answer starts with "I can\'t help with that" and says why it could hurt '
            "someone.",
            SAFETY_CRITIQUE,
            True,
        ),
        (
            'A good answer starts with "I can" and says why it could hurt someone.',
            SAFETY_CRITIQUE,
            True,
        ),
        ("I can't help with that, because it could hurt someone.", SAFETY_CRITIQUE, False),
        ("I can't help with that and I won't.", SAFETY_CRITIQUE, False),
        (
            "The correct answer is 109.",
            "Incorrect. The response answers 12; the correct answer is 109.",
            False,
        ),
        ("anything", None, False),
    ],
)
def test_a_revision_copying_seven_words_of_its_critique_repeats_it(text, critique, copied):
    assert repeats_critique(text, critique) is copied


class ParrotLearner:
    """A learner that answers a revision request with the critique it was shown (what the
    135M learner learned to do), and anything else with a refusal."""

    def generate(self, chats, sampling):
        said = "A reviewer checked an earlier answer to this question: "
        texts = [
            [c[0]["content"].split(said)[1] if said in c[0]["content"] else "I can't."]
            for c in chats
        ]
        return Generations(texts, new_tokens=0, seconds=0.0)


def test_revise_rejects_a_revision_that_copies_its_critique_whatever_the_critic_says():
    verdicts = [verdict("a", 0, 0.0) | {"critique": SAFETY_CRITIQUE}, verdict("a", 1, 0.0)]
    accepting = NoisyCritic(load_suite("arithmetic"), flip_rate=1.0)
    params = BuildPrefsParams(max_new_tokens=6)
    (record,) = revise(plan(verdicts, params), ParrotLearner(), accepting, params)
    assert record["response"] == SAFETY_CRITIQUE and record["score"] == 0.0
    assert record["copied_critique"] and "Repeated the critique" in record["critique"]
    assert revise_metrics([record])["revisions_copying_critique"] == 1
    pairs, metrics = build_prefs(verdicts, [record], params)
    assert pairs == [] and metrics["dropped_revision_rejected"] == 1


class ComplyingLearner:
    """A learner whose every revision complies with the request it was asked."""

    def generate(self, chats, sampling):
        return Generations([["Sure, step one is ..."] for _ in chats], new_tokens=0, seconds=0.0)


class ReadsLabels:
    """The rules in miniature: a response declines when it starts with "I can't"; a
    decline is right on a harmful request, an answer on any other (arithmetic: "7")."""

    name = "reads-labels"

    def judge(self, items):
        out = []
        for item in items:
            declines = item["response"].startswith("I can't")
            if item.get("label") is None:
                ok = item["response"] == "7"
            else:
                ok = declines == (item["label"] == "harmful")
            out.append({"score": float(ok), "critique": "c", "confidence": 1.0, "source": "r"})
        return out


def test_a_rejected_revision_of_a_harmful_request_borrows_a_decline_accepted_on_another():
    """With `revision_borrow`, a harmful request whose revision the critic rejects takes a
    decline the critic accepted on another harmful request (same bucket first), judged
    again on this request, for one pair however many `pairs_per_query` allows. Each
    accepted text is lent once: when none is left the revision stays rejected. An
    arithmetic answer never stands for another problem's."""
    mixed = load_suite(SuiteParams(name="safety", mix={"arithmetic": 0.25}))
    no_a, no_b = "I can't help with that.", "I can't do that; it could hurt someone."
    no_c = "I can't share that, it is private."

    verdicts = labelled_group("h1", "harmful", "weapons", [no_a, "Sure: first ..."], [1.0, 0.0])
    verdicts += labelled_group("h2", "harmful", "weapons", [no_b, "Sure: buy ..."], [1.0, 0.0])
    verdicts += labelled_group("h3", "harmful", "weapons", [no_a, "Sure: then ..."], [1.0, 0.0])
    verdicts += labelled_group("p", "harmful", "privacy", [no_c, "Her address is"], [1.0, 0.0])
    verdicts += labelled_group("w1", "harmful", "weapons", ["Here is how", "Step one"], [0.0, 0.0])
    verdicts += labelled_group("w2", "harmful", "weapons", ["Here's a way", "First"], [0.0, 0.0])
    verdicts += labelled_group("f", "harmful", "fraud", ["Sure, forge it", "Copy it"], [0.0, 0.0])
    verdicts += labelled_group("g", "harmful", "fraud", ["Sure, fake it", "Print it"], [0.0, 0.0])
    verdicts += labelled_group("s", None, "sums", ["6", "8"], [0.0, 0.0], suite="arithmetic")
    verdicts += labelled_group("t", None, "sums", ["7", "5"], [1.0, 0.0], suite="arithmetic")
    borrow = BuildPrefsParams(max_new_tokens=6, pairs_per_query=3, revision_borrow=True)
    records = revise(
        plan(verdicts, borrow, mixed), ComplyingLearner(), ReadsLabels(), borrow, mixed
    )
    revisions = {r["query_id"]: r for r in records if r["kind"] == "revision"}
    assert set(revisions) == {"w1", "w2", "f", "g", "s"}
    assert {revisions["w1"]["response"], revisions["w2"]["response"]} == {no_a, no_b}
    lent = [r for r in revisions.values() if "borrowed_from" in r]
    assert sorted(r["response"] for r in lent) == sorted([no_a, no_b, no_c])  # each once
    fraud = [revisions["f"], revisions["g"]]  # no donor in fraud: the suite's last one
    assert sorted("borrowed_from" in r for r in fraud) == [False, True]
    for r in lent:
        assert r["score"] == 1.0 and r["revised_response"] == "Sure, step one is ..."
        assert r["request"] == f"What is {r['borrowed_from']}?"
    assert "borrowed_from" not in revisions["s"] and revisions["s"]["score"] == 0.0
    assert revise_metrics(records)["revisions_borrowed"] == 3
    pairs, metrics = build_prefs(verdicts, records, borrow, mixed)
    per_query = {q: sum(p["query_id"] == q for p in pairs) for q in ("h1", "w1", "w2", "f", "g")}
    assert per_query["h1"] == 1 and per_query["w1"] == per_query["w2"] == 1
    assert per_query["f"] + per_query["g"] == 1 and not any(p["query_id"] == "s" for p in pairs)
    assert metrics["dropped_revision_rejected"] == 2  # the arithmetic one and a fraud one
    off = BuildPrefsParams(max_new_tokens=6, pairs_per_query=3)
    records = revise(plan(verdicts, off, mixed), ComplyingLearner(), ReadsLabels(), off, mixed)
    assert not any("borrowed_from" in r for r in records)
    assert build_prefs(verdicts, records, off, mixed)[1]["dropped_revision_rejected"] == 5
