"""`dvc repro` of the real dvc.yaml on the tiny profile, in a temporary copy of the repo."""

import json
import re

import pytest
import yaml
from mlflow.tracking import MlflowClient
from workspace import dvc, make_workspace

from stages.suites.base import TRANSFER_OVERLAP
from stages.text import near_duplicates_of

pytestmark = pytest.mark.slow


def test_dvc_repro_round0_then_nothing_to_do(tmp_path, tiny_model_dir):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir)
    first = dvc(ws, "repro")
    assert "Running stage 'prepare'" in first.stdout and "Running stage 'baseline'" in first.stdout

    metrics = json.loads((ws / "metrics/r0.json").read_text())
    heldout = metrics["heldout"]
    assert heldout["items"] == 6 and 0 <= heldout["accuracy"] <= 1
    assert 0 <= heldout["format_adherence"] <= 1 and metrics["tokens_per_s"] > 0
    assert (ws / "models/r0/model.safetensors").is_file()
    assert len((ws / "data/rounds/r0/eval.jsonl").read_text().splitlines()) == 6

    client = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("superalign")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert {"prepare", "baseline", "main", "main/r0"} <= set(runs)  # named as in dvc.yaml
    assert runs["baseline"].data.metrics["heldout.accuracy"] == heldout["accuracy"]

    # Only the always-run `suite` stage runs again; it wrote the same files, so
    # nothing after it reruns.
    second = dvc(ws, "repro")
    assert re.findall(r"Running stage '([^']+)'", second.stdout) == ["suite"]
    assert "Stage 'baseline' didn't change, skipping" in second.stdout


def test_bad_params_stop_repro_with_one_line(tmp_path, tiny_model_dir):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, {"evaluate": {"limt": 3}})
    proc = dvc(ws, "repro", check=False)
    assert proc.returncode != 0
    assert "error: params: unknown key 'limt' in section 'evaluate'" in proc.stderr
    assert not (ws / "models/r0").exists()


def test_two_rounds_end_to_end(tmp_path, tiny_model_dir):
    ws = make_workspace(tmp_path / "ws", tiny_model_dir, rounds=2)
    dvc(ws, "repro")
    for name in ("r1", "r2"):
        rdir = ws / "data/rounds" / name
        assert len((rdir / "queries.jsonl").read_text().splitlines()) == 8
        assert len((rdir / "samples.jsonl").read_text().splitlines()) == 24  # 8 queries x K=3
        verdicts = [json.loads(line) for line in (rdir / "verdicts.jsonl").read_text().splitlines()]
        assert all(v["critique"] and v["source"] == "noisy" for v in verdicts)
        assert len((rdir / "review_queue.jsonl").read_text().splitlines()) == 3
        assert (rdir / "pairs.jsonl").read_text().strip()
        assert (ws / "models" / name / "adapter_model.safetensors").is_file()
        assert not (ws / "models" / name / "model.safetensors").exists()  # adapter only
        metrics = json.loads((ws / f"metrics/{name}.json").read_text())
        assert {"heldout", "benchmark", "fresh"} <= set(metrics)
    # r2 replays r1's pairs, read from what r1 was trained on (a DVC dependency).
    r1_pairs = len((ws / "data/rounds/r1/pairs.jsonl").read_text().splitlines())
    train_r2 = json.loads((ws / "metrics/train/r2.json").read_text())
    assert train_r2["replayed_pairs"] == r1_pairs
    trained_on = (ws / "data/rounds/r2/trained_on.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["round"] == "r1" for line in trained_on) == r1_pairs
    table = (ws / "reports/rounds.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in table] == ["round", "r0", "r1", "r2"]
    summary = json.loads((ws / "reports/summary.json").read_text())
    assert summary["rounds"] == 2

    client = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("superalign")
    names = {r.info.run_name for r in client.search_runs([experiment.experiment_id])}
    stages = ("attack", "sample", "critique", "revise", "build_prefs", "train", "evaluate")
    assert {f"{s}@{r}" for s in stages for r in ("r1", "r2")} <= names

    # One more round: only the new round's stages (and the report) run.
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["rounds"]["r3"] = {"prev": "r2"}
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = dvc(ws, "repro")
    ran = set(re.findall(r"Running stage '([^']+)'", third.stdout))
    assert ran == {f"{s}@r3" for s in stages} | {"report", "suite"}


def test_misbehaving_critic_stops_cleanly(tmp_path, tiny_model_dir):
    """A judge whose replies never parse: null verdicts, no pairs, a clear stop before training."""
    ws = make_workspace(
        tmp_path / "ws",
        tiny_model_dir,
        {"critique": {"kind": "llm_judge", "max_new_tokens": 8}},
        rounds=1,
    )
    proc = dvc(ws, "repro", check=False)
    assert proc.returncode != 0
    assert "error: train: the preference set is empty" in proc.stderr
    critique_metrics = json.loads((ws / "metrics/critique/r1.json").read_text())
    assert critique_metrics["null_verdicts"] == critique_metrics["items"] == 24
    assert not (ws / "models/r1").exists()  # nothing half-written for DVC to trust


def test_open_suite_round_without_gold(tmp_path, tiny_model_dir):
    """No gold: the LLM attacker writes the queries and the LLM judge critiques and grades."""
    ws = make_workspace(
        tmp_path / "ws",
        tiny_model_dir,
        {
            "suite": {"name": "open"},
            "attack": {"kind": "llm", "candidates": 16, "max_new_tokens": 12},
            "critique": {"kind": "llm_judge", "score_mode": "forced", "max_new_tokens": 8},
            "build_prefs": {"require_acceptable": False, "min_margin": 0.0},
        },
        rounds=1,
    )
    dvc(ws, "repro")
    rdir = ws / "data/rounds/r1"
    queries = [json.loads(line) for line in (rdir / "queries.jsonl").read_text().splitlines()]
    assert queries and all(q.get("gold") is None for q in queries)
    verdicts = [json.loads(line) for line in (rdir / "verdicts.jsonl").read_text().splitlines()]
    # the judge's verdicts, with the critique it wrote (the tiny random judge writes noise)
    assert verdicts and all(v["source"] not in {"verifier", "noisy"} for v in verdicts)
    assert any(v["critique"] for v in verdicts)
    assert all(v["score"] is not None for v in verdicts)  # forced mode always scores
    assert (ws / "models/r1/adapter_model.safetensors").is_file()
    heldout = json.loads((ws / "metrics/r1.json").read_text())["heldout"]
    assert heldout["graded"] == heldout["items"] > 0  # graded by the judge, not by gold


def test_user_jsonl_suite_two_rounds(tmp_path, tiny_model_dir):
    """A user's labelled JSONL file as the suite: split once, attacked from the pool only,
    graded by its labels, reported per bucket and per label."""
    rows = []
    for bucket, label, count in (
        ("weapons", "harmful", 4),
        ("cyber", "harmful", 8),
        ("idioms", "benign", 12),
    ):
        rows += [
            {"prompt": f"{bucket} question {i}?", "label": label, "bucket": bucket}
            for i in range(count)
        ]
    rows[0]["split"] = "heldout"
    ws = make_workspace(
        tmp_path / "ws",
        tiny_model_dir,
        {"suite": {"name": "jsonl:data/mine.jsonl"}, "attack": {"queries": 12}},
        rounds=2,
    )
    (ws / "data/mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    dvc(ws, "repro")

    def read(path):
        return [json.loads(line) for line in (ws / path).read_text().splitlines()]

    heldout, pool = read("data/suite/heldout.jsonl"), read("data/suite/pool.jsonl")
    assert len(heldout) + len(pool) == len(rows)
    assert not {q["id"] for q in heldout} & {q["id"] for q in pool}
    assert rows[0]["prompt"] in {q["prompt"] for q in heldout}
    pool_ids = {q["id"] for q in pool}
    for name in ("r1", "r2"):
        queries = read(f"data/rounds/{name}/queries.jsonl")
        assert len(queries) == 12 and len({q["id"] for q in queries}) == 12
        assert {q["id"] for q in queries} <= pool_ids  # never a held-out item
        attack = json.loads((ws / f"metrics/attack/{name}.json").read_text())
        assert {f"share.{b}" for b in ("weapons", "cyber", "idioms")} <= set(attack)
        metrics = json.loads((ws / f"metrics/{name}.json").read_text())
        assert set(metrics["heldout"]["buckets"]) == {"weapons", "cyber", "idioms"}
        assert set(metrics["heldout"]["labels"]) == {"harmful", "benign"}
        assert metrics["heldout"]["graded"] == metrics["heldout"]["items"]  # by labels
    # Round 2's bandit reads round 1's graded attacks, bucket by bucket.
    attack_r2 = json.loads((ws / "metrics/attack/r2.json").read_text())
    assert any(k.startswith("prior_failure.") for k in attack_r2)
    verdicts = read("data/rounds/r1/verdicts.jsonl")
    assert all(v["label"] in ("harmful", "benign") for v in verdicts)


def test_safety_mixture_round(tmp_path, tiny_model_dir):
    """The safety suite mixed with arithmetic: queries drawn from both by weight, each
    suite's held-out and transfer metrics reported, the headline metric summarised; a
    validation set the attacker never draws from; the strategy attacker's rewrites screened
    by the round's learner, none of them or of the pairs echoing a transfer item. (The
    step search on it needs a verifier, which accepts none of the tiny model's answers, so
    no pairs: tests/test_step.py runs it.)"""
    ws = make_workspace(
        tmp_path / "ws",
        tiny_model_dir,
        {
            "suite": {"name": "safety", "mix": {"arithmetic": 0.25}, "validation_per_bucket": 1},
            "attack": {"kind": "strategy", "queries": 8, "screen": 2, "max_new_tokens": 8},
            "evaluate": {"limit": None},
            "report": {"metric": "heldout.suites.safety.labels.harmful"},
        },
        rounds=1,
    )
    params = yaml.safe_load((ws / "params.yaml").read_text())
    assert params["evaluate"]["limit"] is None
    dvc(ws, "repro")
    queries = [
        json.loads(x) for x in (ws / "data/rounds/r1/queries.jsonl").read_text().splitlines()
    ]
    attack = json.loads((ws / "metrics/attack/r1.json").read_text())
    # a rewrite echoing an evaluation item is dropped, not replaced: the shortfall says so
    assert sorted(q["suite"] for q in queries) == ["arithmetic"] * 2 + ["safety"] * (
        6 - attack["shortfall"]
    )
    assert attack["shortfall"] <= attack.get("dropped.near_evaluation", 0) + attack.get(
        "dropped.near_duplicate", 0
    )
    assert attack["screened"] == len(queries)  # every query has ground truth to fail
    safety = [q for q in queries if q["suite"] == "safety"]
    assert all(q["strategy"] and q["intent"] for q in safety)
    assert attack["written_share.harmful"] + attack.get("written_share.benign", 0) > 0
    transfer = [
        json.loads(x)["prompt"] for x in (ws / "data/suite/transfer.jsonl").read_text().splitlines()
    ]
    assert len(transfer) >= 620  # AdvBench's 520 and the benign transfer set
    pairs = [json.loads(x) for x in (ws / "data/rounds/r1/pairs.jsonl").read_text().splitlines()]
    trained = [q["prompt"] for q in queries] + [p["prompt"][-1]["content"] for p in pairs]
    assert not any(near_duplicates_of(trained, transfer, TRANSFER_OVERLAP))
    validation = [
        json.loads(x) for x in (ws / "data/suite/validation.jsonl").read_text().splitlines()
    ]
    assert len(validation) == 5 + 8 + 8  # risk areas, benign categories, arithmetic buckets
    assert not {q["id"] for q in validation} & {q["id"] for q in queries}
    heldout = json.loads((ws / "metrics/r1.json").read_text())["heldout"]
    assert set(heldout["suites"]) == {"safety", "arithmetic"}
    assert set(heldout["suites"]["safety"]["labels"]) == {"harmful", "benign"}
    assert 0 <= heldout["suites"]["arithmetic"]["accuracy"] <= 1
    summary = json.loads((ws / "reports/summary.json").read_text())
    assert summary["metric"] == "heldout.suites.safety.labels.harmful"
    assert (
        summary["metric_r0"]
        == json.loads((ws / "metrics/r0.json").read_text())["heldout"]["suites"]["safety"][
            "labels"
        ]["harmful"]
    )
    assert "heldout_suites_arithmetic_accuracy" in (ws / "reports/rounds.csv").read_text()
    r1 = json.loads((ws / "metrics/r1.json").read_text())
    assert set(r1["transfer"]["labels"]) == {"harmful", "benign"}
    assert 0 <= r1["transfer"]["degenerate"] <= 1
    assert set(summary["transfer_labels_harmful"]) == {"r0", "r1"}
    assert "transfer_labels_benign" in (ws / "reports/rounds.csv").read_text()


def test_profile_runs_as_experiment_and_is_saved(tmp_path, tiny_model_dir):
    """`superalign exp` end to end: a profile plus `-S` becomes a real DVC experiment,
    and the campaign is saved with the params it ran with and the command that ran it."""
    import sys
    from pathlib import Path

    from workspace import run

    ws = make_workspace(tmp_path / "ws", tiny_model_dir)
    (ws / "profiles").mkdir()
    (ws / "profiles/quick.yaml").write_text("evaluate:\n  limit: 4\n")
    run(["git", "add", "-A"], ws)
    run(["git", "commit", "-qm", "baseline"], ws)
    baseline = run(["git", "rev-parse", "HEAD"], ws).stdout.strip()

    superalign = str(Path(sys.executable).parent / "superalign")
    proc = run([superalign, "exp", "quick", "-n", "quick-1", "-S", "attack.seed=3"], ws)
    assert "saved in reports/campaigns/quick-1/" in proc.stdout

    saved = ws / "reports/campaigns/quick-1"
    params = yaml.safe_load((saved / "params.yaml").read_text())
    assert params["evaluate"]["limit"] == 4 and params["attack"]["seed"] == 3
    assert json.loads((saved / "summary.json").read_text())["rounds"] == 0
    assert (saved / "rounds.csv").read_text().startswith("round,")
    origin = json.loads((saved / "campaign.json").read_text())
    assert origin["baseline_commit"] == baseline
    assert origin["command"] == "superalign exp quick -n quick-1 -S attack.seed=3"
    # The workspace is untouched: the experiment ran in DVC's temporary copy.
    assert yaml.safe_load((ws / "params.yaml").read_text())["evaluate"]["limit"] == 6
