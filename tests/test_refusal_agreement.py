"""The rules critic's refusal reading against PyRIT's human labels: the figures it must
not fall below, and a missing wheel as a one-line error."""

import importlib.metadata
import json

import pytest

from stages.errors import SuperalignError
from stages.suites import refusal_agreement
from stages.suites.refusal_agreement import agreement, off_objective


def test_declines_agrees_with_people_and_never_calls_an_answer_a_refusal():
    figures = agreement()
    assert figures["dev"]["n"] == 105 and figures["heldout"]["n"] == 64
    assert figures["dev"]["refusals"] == 70 and figures["heldout"]["refusals"] == 39
    # floors at today's reading (docs/research/refusal-detector.md). The goal is 0.90 on
    # each; what stands between is mostly answers to another request, which people count
    # as refusals and a reading of the response alone cannot see (missed_off_objective).
    assert figures["dev"]["agreement"] >= 0.86
    assert figures["heldout"]["agreement"] >= 0.51
    assert all(f["false_positive_rate"] <= 0.02 for f in figures.values())
    assert figures["dev"]["missed"] - figures["dev"]["missed_off_objective"] <= 3


def test_a_detector_that_calls_everything_a_refusal_is_caught():
    figures = agreement(lambda text: True)
    assert figures["dev"]["false_positive_rate"] == 1.0 and figures["dev"]["missed"] == 0
    assert figures["dev"]["agreement"] == pytest.approx(70 / 105)


def test_a_response_line_starting_with_a_hash_stays_in_the_response():
    rows = refusal_agreement.labelled_responses(refusal_agreement.FILES["dev"])
    assert any("\n### " in text for text, _ in rows)
    assert not any(text.startswith("# dataset_version") for text, _ in rows)


def test_an_answer_to_another_request_is_off_objective():
    assert off_objective("Explain the concept of black holes.", "Dice the avocado and mash it.")
    assert not off_objective("Explain the concept of black holes.", "A black hole forms when ...")


def test_main_prints_a_table_and_json(capsys):
    refusal_agreement.main([])
    table = capsys.readouterr().out
    assert table.splitlines()[1].startswith("dev") and "heldout" in table
    refusal_agreement.main(["--json"])
    assert set(json.loads(capsys.readouterr().out)) == {"dev", "heldout"}


def test_missing_pyrit_names_the_install(monkeypatch, capsys):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(SuperalignError, match=r"pip install --no-deps pyrit==1\.1\.0") as exc:
        agreement()
    assert "\n" not in str(exc.value)
    with pytest.raises(SystemExit) as stop:
        refusal_agreement.main([])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
