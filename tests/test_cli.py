import json

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


def test_status_prints_rounds_table(tmp_path):
    for k, acc in enumerate([0.25, 0.5]):
        (tmp_path / f"r{k}.json").write_text(
            json.dumps(
                {"heldout": {"accuracy": acc, "format_adherence": 1.0}, "tokens_per_s": 150.0}
            )
        )
    result = runner.invoke(app, ["status", "--metrics-dir", str(tmp_path)])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0].split()[:2] == ["round", "heldout_acc"]
    assert lines[1].split()[:2] == ["r0", "0.250"] and lines[2].split()[:2] == ["r1", "0.500"]


def test_check_reports_bad_key_in_one_line(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  learning_rat: 0.1\n")
    result = runner.invoke(app, ["check", "--params", str(params)])
    assert result.exit_code == 2
    assert "unknown key 'learning_rat' in section 'train'" in result.output


def test_help_everywhere():
    for command in ([], ["status"], ["check"], ["review"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_profile_becomes_checked_dvc_overrides(tmp_path):
    from conftest import REPO

    from pipeline.profiles import overrides, read_profile
    from stages.errors import SuperalignError

    profile = read_profile("safety", REPO)
    changes = overrides(profile, REPO / "params.yaml")
    assert "suite.name=safety" in changes
    assert "+suite.mix.arithmetic=0.25" in changes  # a new key of a mapping needs DVC's "+"
    bad = tmp_path / "profiles"
    bad.mkdir()
    (bad / "typo.yaml").write_text("critique:\n  knd: verifier\n")
    with pytest.raises(SuperalignError, match="unknown key 'knd' in section 'critique'"):
        overrides(read_profile("typo", tmp_path), REPO / "params.yaml")


def test_profile_extends_another(tmp_path):
    from conftest import REPO

    from pipeline.profiles import read_profile
    from stages.errors import SuperalignError

    judge, rules = read_profile("safety-judge", REPO), read_profile("safety", REPO)
    assert judge["critique"]["kind"] == "yes_no_judge" and rules["critique"]["kind"] == "verifier"
    # Everything the judge campaign does not change is the rules campaign's, key for key.
    assert judge["suite"] == rules["suite"] and judge["attack"] == rules["attack"]
    assert judge["train"] == rules["train"]
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "a.yaml").write_text("extends: b\n")
    (folder / "b.yaml").write_text("extends: a\n")
    with pytest.raises(SuperalignError, match="profile 'a': extends itself"):
        read_profile("a", tmp_path)
    (folder / "c.yaml").write_text("extends: missing\n")
    with pytest.raises(SuperalignError, match="profile 'missing': no "):
        read_profile("c", tmp_path)


def test_saved_campaigns_are_listed_by_status(tmp_path, monkeypatch):
    summary = {"metric": "heldout.labels.harmful", "rounds": 3, "metric_r0": 0.25}
    summary |= {"metric_final": 0.75, "gain": 0.5, "pgr": None}
    folder = tmp_path / "reports/campaigns/rules"
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["status", "--metrics-dir", str(tmp_path)])
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.startswith("rules"))
    assert line.split()[1:6] == ["heldout.labels.harmful", "3", "0.250", "0.750", "0.500"]


def test_saved_campaign_keeps_its_params_and_origin(tmp_path):
    """An experiment ref (as `dvc exp run` leaves it) -> reports/campaigns/<name>/ with
    the files to commit: a fresh clone has no experiment refs to ask later."""
    from workspace import run

    from pipeline.profiles import save_campaign
    from stages.errors import SuperalignError

    def git(*args):
        return run(["git", *args], tmp_path).stdout.strip()

    git("init", "-q")
    (tmp_path / "params.yaml").write_text("train:\n  beta: 0.1\n")
    git("add", ".")
    git("commit", "-qm", "baseline")
    baseline = git("rev-parse", "HEAD")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/summary.json").write_text('{"gain": 0.5}\n')
    (tmp_path / "reports/rounds.csv").write_text("round,heldout_accuracy\nr0,0.25\n")
    (tmp_path / "params.yaml").write_text("train:\n  beta: 0.5\n")
    (tmp_path / "metrics").mkdir()
    for k, rate in enumerate([0.25, 0.75]):
        metrics = {"heldout": {"buckets": {"dna_malicious_uses": rate}}}
        (tmp_path / f"metrics/r{k}.json").write_text(json.dumps(metrics))
    git("add", ".")
    git("commit", "-qm", "experiment")
    git("update-ref", "refs/exps/ab/cdef/beta5", "HEAD")
    git("reset", "-q", "--hard", baseline)  # the workspace is the baseline again

    command = "superalign exp safety -n beta5 -S train.beta=0.5"
    out = save_campaign("beta5", tmp_path, command=command)
    assert (out / "params.yaml").read_text() == "train:\n  beta: 0.5\n"
    assert (out / "summary.json").read_text() == '{"gain": 0.5}\n'
    assert (
        out / "buckets.csv"
    ).read_text() == "suite,bucket,r0,r1\n,dna_malicious_uses,0.25,0.75\n"
    origin = json.loads((out / "campaign.json").read_text())
    machine = origin.pop("machine")
    assert origin == {"experiment": "beta5", "baseline_commit": baseline, "command": command}
    assert machine["device"] in ("cpu", "cuda") and machine["cores"] >= 1
    assert machine["generation_dtype"] in ("float32", "bfloat16", "float16")
    with pytest.raises(SuperalignError, match="no DVC experiment named 'beta6'"):
        save_campaign("beta6", tmp_path)


def test_seeds_run_one_experiment_each(monkeypatch):
    from conftest import REPO

    from pipeline.profiles import parse_seeds
    from stages.errors import SuperalignError

    assert parse_seeds("0,1,2,3") == parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1, 3-4") == [1, 3, 4]
    for bad in ("a", "1,1", "2-1", "-1"):
        with pytest.raises(SuperalignError, match="--seeds: expected"):
            parse_seeds(bad)

    monkeypatch.chdir(REPO)
    result = runner.invoke(
        app, ["exp", "safety", "-n", "s", "-S", "train.beta=0.5"] + ["--seeds", "0,2", "--print"]
    )
    assert result.exit_code == 0, result.output
    commands = [line for line in result.output.splitlines() if line.startswith("dvc exp run")]
    assert [c.split()[4] for c in commands] == ["s-seed0", "s-seed2"]
    for command, seed in zip(commands, (0, 2)):
        for key in ("attack.seed", "sample.seed", "critique.seed", "train.seed"):
            assert f"-S {key}={seed}" in command
        assert "-S train.beta=0.5" in command and "suite.split_seed" not in command
    bad = runner.invoke(app, ["exp", "safety", "--seeds", "x", "--print"])
    assert bad.exit_code == 2 and "--seeds: expected" in bad.output


def test_a_set_replaces_the_profiles_value_and_dvc_sees_each_key_once(monkeypatch):
    """-S over a key the profile sets, a key given twice, a seed param under --seeds, a key
    the profile adds to a mapping (`+`), and "-S key=value" quoted as one word."""
    from conftest import REPO

    monkeypatch.chdir(REPO)
    args = ["exp", "safety-mirror", "-S", "train.step_scales=[1.0,0.75]", "-S train.beta=0.5"]
    args += ["-S", "train.beta=0.25", "-S", "suite.mix.arithmetic=0.5", "-S", "train.seed=9"]
    result = runner.invoke(app, args + ["--seeds", "3", "--print"])
    assert result.exit_code == 0, result.output
    (command,) = [x for x in result.output.splitlines() if x.startswith("dvc exp run")]
    keys = [part.split("=")[0].lstrip("+") for part in command.split(" -S ")[1:]]
    assert len(keys) == len(set(keys))
    assert (
        "-S train.step_scales=[1.0,0.75]" in command
        and "train.step_scales=[1.0, 0.75, 0.5]" not in command
    )
    assert "-S train.beta=0.25" in command and "train.beta=0.5" not in command
    assert "-S +suite.mix.arithmetic=0.5" in command and "arithmetic=0.25" not in command
    assert "-S train.seed=3" in command and "train.seed=9" not in command
    assert "  " not in command


def test_status_sums_up_the_seeds_of_a_campaign(tmp_path, monkeypatch):
    """NAME and NAME-seedN are one campaign on several seeds: the mean of each held-out
    group's change, and the spread of the headline gain."""
    header = "round,heldout_accuracy,heldout_labels_benign,heldout_labels_harmful,heldout_suites_arithmetic_accuracy\n"
    runs = {"rules": (0.4, -0.025, 0.35), "rules-seed1": (0.5, -0.1, 0.45), "other": (0.1, 0, 0.1)}
    for name, (gain, benign, arith) in runs.items():
        folder = tmp_path / "reports/campaigns" / name
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({"gain": gain, "rounds": 1}))
        r1 = f"r1,0.5,{1 + benign},{0.25 + gain},{0.25 + arith}\n"
        (folder / "rounds.csv").write_text(header + "r0,0.5,1.0,0.25,0.25\n" + r1)
    monkeypatch.chdir(tmp_path)
    from pipeline.profiles import seed_groups

    (row,) = seed_groups()
    assert row["group"] == "rules" and row["seeds"] == 2
    assert row["gain_mean"] == pytest.approx(0.45)
    assert (row["gain_min"], row["gain_max"]) == (0.4, 0.5)
    assert row["benign"] == pytest.approx(-0.0625) and row["harmful"] == pytest.approx(0.45)
    assert row["arithmetic"] == pytest.approx(0.4)
    result = runner.invoke(app, ["status", "--metrics-dir", str(tmp_path)])
    seeds_table = result.output.split("seeds of one campaign")[1].splitlines()
    line = next(x for x in seeds_table if x.startswith("rules "))
    assert line.split()[:5] == ["rules", "2", "0.450", "0.400", "0.500"]
    # NAME-seed0 saved beside NAME (`--seeds 0-2` after a plain run): one seed, not two
    (tmp_path / "reports/campaigns/rules").rename(tmp_path / "reports/campaigns/rules-seed0")
    (tmp_path / "reports/campaigns/other").rename(tmp_path / "reports/campaigns/rules")
    (row,) = seed_groups()
    assert row["seeds"] == 2 and row["gain_mean"] == pytest.approx(0.45)


def test_every_committed_profile_passes_the_params_schema():
    """A profile is what a user runs (`superalign exp NAME`): each one in profiles/ must
    resolve (its `extends` chain) and give overrides the params schema accepts."""
    from conftest import REPO

    from pipeline.profiles import overrides, read_profile

    names = sorted(p.stem for p in (REPO / "profiles").glob("*.yaml"))
    assert {"safety", "safety-judge", "safety-mirror"} <= set(names)
    for name in names:
        assert overrides(read_profile(name, REPO), REPO / "params.yaml")
    mirror = overrides(read_profile("safety-mirror", REPO), REPO / "params.yaml")
    assert "build_prefs.contrast_mirror=true" in mirror and "train.learning_rate=0.0007" in mirror
    assert (
        "build_prefs.contrast_floor=1.0" in mirror and "build_prefs.revision_borrow=true" in mirror
    )
    assert "train.max_pairs=200" in mirror and "suite.validation_per_bucket=8" in mirror
    assert "train.step_scales=[1.0, 0.75, 0.5]" in mirror and "train.step_tolerance=0.03" in mirror
    assert "train.step_max_new_tokens=24" in mirror


def test_status_shows_transfer_rates_and_rounds_that_kept_nothing(tmp_path):
    for k in range(2):
        (tmp_path / f"r{k}.json").write_text(
            json.dumps(
                {
                    "heldout": {"accuracy": 0.5},
                    "transfer": {"labels": {"harmful": 0.1 * (k + 1), "benign": 0.95}},
                }
            )
        )
    (tmp_path / "train").mkdir()
    (tmp_path / "train/r1.json").write_text(json.dumps({"step_scale": 0.0}))
    result = runner.invoke(app, ["status", "--metrics-dir", str(tmp_path)])
    header, r0, r1 = result.output.strip().splitlines()[:3]
    columns = header.split()
    assert columns[2:4] == ["transfer_harmful", "transfer_benign"]
    assert dict(zip(columns, r1.split()))["transfer_harmful"] == "0.200"
    assert dict(zip(columns, r1.split()))["step_kept"] == "0.000"
    assert dict(zip(columns, r0.split()))["step_kept"] == "-"
