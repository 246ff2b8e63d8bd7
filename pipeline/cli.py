"""The `superalign` command line: thin commands over the stages and the pipeline."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from stages.errors import SuperalignError

app = typer.Typer(
    help="Iterative attacker / learner / critic alignment rounds (DVC + Prefect + MLflow).",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(exc: SuperalignError) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


@app.command()
def check(params: Path = typer.Option(Path("params.yaml"), help="params file to validate")) -> None:
    """Validate params.yaml strictly (unknown keys, types, the rounds chain)."""
    from stages.params import load_params
    from stages.suites import load_suite

    try:
        loaded = load_params(params)
        suite = load_suite(loaded["suite"])
    except SuperalignError as exc:
        _fail(exc)
    rounds = ", ".join(["r0", *loaded["rounds"]])
    typer.echo(
        f"{params}: ok (learner {loaded['learner'].model}; suite {suite.name}; rounds {rounds})"
    )


@app.command()
def suites(
    names: list[str] = typer.Argument(
        None, help="more suites to describe, e.g. jsonl:data/mine.jsonl or datasets:DIR"
    ),
    params: Path = typer.Option(Path("params.yaml"), help="split settings (suite section)"),
    data: Path = typer.Option(Path("data"), help="where built-in suites keep their files"),
) -> None:
    """List the built-in suites (and any named here): sizes, buckets, ground truth.

    Each is loaded and checked the way the `suite` stage does, so a bad file fails here
    with the same one-line error.
    """
    import dataclasses

    from stages.params import load_params
    from stages.suite import materialize
    from stages.suites import BUILTIN, load_suite

    try:
        base = load_params(params)["suite"] if params.is_file() else None
        rows = []
        for name in [*BUILTIN, *(names or [])]:
            suite_params = dataclasses.replace(base, name=name, rubric=None) if base else name
            facts = materialize(load_suite(suite_params, data))["suite.json"]
            rows.append(
                {
                    "suite": name,
                    "heldout": facts["heldout"],
                    "pool": facts["pool"],
                    "draws_from": facts["draws_from"],
                    "buckets": len(facts["buckets"]),
                    "ground_truth": facts["ground_truth"],
                    "seeds": facts["seeds"],
                }
            )
    except SuperalignError as exc:
        _fail(exc)
    typer.echo(format_table(rows))


# status column -> the report's column of the same metric
STATUS_COLUMNS = {
    "heldout_acc": "heldout_accuracy",
    "transfer_harmful": "transfer_labels_harmful",
    "transfer_benign": "transfer_labels_benign",
    "degenerate": "degenerate",
    "step_kept": "step_scale",
    "format": "format_adherence",
    "length": "mean_length_chars",
    "distinct_2": "distinct_2",
    "tok_s": "tokens_per_s",
}


def rounds_table(metrics_dir: Path) -> list[dict]:
    """One row per evaluated round (metrics/rK.json present), in round order."""
    from pipeline.rounds import evaluated_rounds
    from stages.report import rounds_table as report_table

    rows = report_table(metrics_dir, evaluated_rounds(metrics_dir))
    return [{"round": r["round"]} | {k: r.get(c) for k, c in STATUS_COLUMNS.items()} for r in rows]


def format_table(rows: list[dict]) -> str:
    if not rows:
        return "no rounds evaluated yet (run `dvc repro`)"
    headers = list(rows[0])

    def cell(value):
        if value is None:
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    cells = [[cell(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    # names (the first column, and any column of text) align left, figures right
    left = [
        i == 0 or any(isinstance(row.get(h), str) for row in rows) for i, h in enumerate(headers)
    ]

    def line(texts):
        return "  ".join(
            t.ljust(w) if is_left else t.rjust(w) for t, w, is_left in zip(texts, widths, left)
        ).rstrip()

    lines = [line(headers)] + [line(row) for row in cells]
    return "\n".join(lines)


@app.command()
def status(
    metrics_dir: Path = typer.Option(Path("metrics"), help="where metrics/rK.json live"),
) -> None:
    """Print a table of evaluated rounds and their metrics (no server needed), then the
    campaigns saved under reports/campaigns/ (`superalign exp` saves each it runs)."""
    from pipeline.profiles import campaign_rows, seed_groups

    typer.echo(format_table(rounds_table(metrics_dir)))
    campaigns = campaign_rows()
    if campaigns:
        typer.echo("\ncampaigns (reports/campaigns/):")
        typer.echo(format_table(campaigns))
    groups = seed_groups()
    if groups:
        typer.echo("\nseeds of one campaign (NAME-seedN, and NAME as seed 0), r0 -> last round:")
        typer.echo(format_table(groups))


@app.command()
def buckets(
    name: str = typer.Argument(
        None, help="a saved campaign or DVC experiment (default: this workspace's rounds)"
    ),
    metrics_dir: Path = typer.Option(Path("metrics"), help="where metrics/rK.json live"),
) -> None:
    """Held-out rate per bucket (risk area, benign category, difficulty) each round, and
    its change from the first round to the last: where a campaign gains and where it
    gives way, which the whole-set rates hide."""
    from pipeline.buckets import bucket_rows, campaign_buckets, with_change, workspace_metrics

    try:
        rows = campaign_buckets(name) if name else bucket_rows(workspace_metrics(metrics_dir))
    except SuperalignError as exc:
        _fail(exc)
    if all(row["suite"] is None for row in rows):  # one suite: the column says nothing
        rows = [{k: v for k, v in row.items() if k != "suite"} for row in rows]
    typer.echo(format_table(with_change(rows)))


@app.command()
def review(
    round: str = typer.Argument(..., help="the round whose review queue to label, e.g. r2"),
    labeler: str = typer.Option(os.environ.get("USER", "expert"), help="your name in the labels"),
) -> None:
    """Label the critic's least confident verdicts of a round in the terminal.

    Accept or reject each queued response (with an optional critique); labels are
    appended to the git-tracked labels file, and the next `dvc repro` reruns the round
    with them overriding the critic.
    """
    from pipeline.dag import option_of, resolved_stages
    from pipeline.review import run_review

    try:
        stages = resolved_stages(".")  # read dvc.yaml once for both stages' paths
        # The samples' verdicts first, then the revisions' (stage revise, when it has run).
        for stage, of in ((f"critique@{round}", "sample"), (f"revise@{round}", "revision")):
            queue = Path(option_of(stages, stage, "--queue"))
            labels = Path(option_of(stages, stage, "--labels"))
            if not queue.is_file():
                if of == "revision":
                    break
                raise SuperalignError(f"{queue}: no review queue yet; run `dvc repro {stage}`")
            run_review(queue, labels, labeler, round_name=round, of=of)
    except SuperalignError as exc:
        _fail(exc)


@app.command()
def exp(
    profile: str = typer.Argument(..., help="a profile in profiles/, e.g. safety"),
    name: str = typer.Option(None, "--name", "-n", help="experiment name (default: the profile)"),
    set_: list[str] = typer.Option([], "--set", "-S", help="one more params change, key=value"),
    seeds: str = typer.Option(
        None, help="run once per seed, e.g. 0,1,2,3: experiments NAME-seed0, NAME-seed1, ..."
    ),
    temp: bool = typer.Option(True, help="run in a temporary copy (the workspace stays as is)"),
    dry: bool = typer.Option(False, "--print", help="print the dvc command, run nothing"),
) -> None:
    """Run a params profile as a DVC experiment (`dvc exp run -n NAME -S ...`).

    The profile's changes are checked against the params schema first. MLflow logs to
    this directory's store even from a temporary copy, so the campaign shows beside the
    others in the MLflow UI. With --seeds the campaign runs once per seed (every seed
    param but the suite's split), one after another, and `superalign status` sums the
    seeds up: one campaign is one draw.
    """
    from pipeline.profiles import (
        overrides,
        parse_seeds,
        read_profile,
        seed_overrides,
        seed_run_name,
        with_sets,
    )

    name = name or profile
    # `"-S key=value"` quoted as one word arrives as " key=value", which DVC's parser refuses
    set_ = [s.strip() for s in set_]
    try:
        changes = overrides(read_profile(profile), Path("params.yaml"))
        runs = [(name, [])]  # (experiment, its seed changes)
        if seeds is not None:
            runs = [(seed_run_name(name, s), seed_overrides(s)) for s in parse_seeds(seeds)]
    except SuperalignError as exc:
        _fail(exc)
    for run_name, seed_sets in runs:
        sets = list(set_) + seed_sets
        code = _run_experiment(profile, run_name, with_sets(changes, sets), sets, temp, dry)
        if code != 0:
            raise typer.Exit(code)


def _run_experiment(
    profile: str, name: str, changes: list[str], sets: list[str], temp: bool, dry: bool
) -> int:
    """One `dvc exp run`, then the campaign saved with the `superalign exp` command that
    reproduces it on its own."""
    import shlex
    import subprocess
    import sys

    from pipeline.profiles import save_campaign
    from stages.tracking import DEFAULT_TRACKING_URI, QUIET_ENV

    cmd = ["dvc", "exp", "run", "-n", name] + (["--temp"] if temp else [])
    for change in changes:
        cmd += ["-S", change]
    typer.echo(" ".join(cmd))
    if dry:
        return 0
    store = f"sqlite:///{Path.cwd() / DEFAULT_TRACKING_URI.removeprefix('sqlite:///')}"
    env = os.environ | QUIET_ENV
    env.setdefault("MLFLOW_TRACKING_URI", store)
    bin_dir = Path(sys.executable).parent
    code = subprocess.run([str(bin_dir / cmd[0]), *cmd[1:]], env=env).returncode
    if code == 0:
        ran = ["superalign", "exp", profile, "-n", name]
        ran += [part for change in sets for part in ("-S", change)]
        try:
            saved = save_campaign(name, command=shlex.join(ran))
        except SuperalignError as exc:
            _fail(exc)
        typer.echo(
            f"campaign summary, rounds table, params and origin saved in {saved}/ (commit them)"
        )
    return code


SCHEDULED_WAIT_S = 6 * 3600  # how long a scheduled run waits for the run lock


def _quiet() -> None:
    from stages.tracking import quiet_telemetry

    quiet_telemetry()


@app.command()
def run(
    rounds: int = typer.Option(None, help="extend params.yaml's rounds to r1..rN first"),
    add: int = typer.Option(0, help="append this many rounds first"),
    campaign: str = typer.Option(None, help="MLflow campaign name (default: tracking.campaign)"),
    wait: float = typer.Option(0, help="seconds to wait for another run's lock"),
) -> None:
    """Run the campaign as a Prefect flow: one task per DVC stage per round.

    DVC decides what is stale; up-to-date stages finish as "skipped". With
    PREFECT_API_URL set (see `superalign ui`) the run shows in the Prefect UI.
    """
    _quiet()
    from pipeline.flow import superalign_rounds

    try:
        outcomes = superalign_rounds(
            root=".", rounds=rounds, add=add, campaign=campaign, wait_seconds=wait
        )
    except SuperalignError as exc:
        _fail(exc)
    ran = [s for s, o in outcomes.items() if o == "ran"]
    typer.echo(f"{len(ran)} stage(s) ran, {len(outcomes) - len(ran)} up to date")
    typer.echo(format_table(rounds_table(Path("metrics"))))


def _need_server() -> str:
    url = os.environ.get("PREFECT_API_URL")
    if not url:
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value()
    if not url:
        raise SuperalignError(
            "no Prefect server: start one (`superalign ui` or `prefect server start`) and "
            "export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    return url


@app.command()
def serve(
    interval: float = typer.Option(None, help="minutes between scheduled runs"),
    cron: str = typer.Option(None, help="cron schedule instead, e.g. '0 2 * * *'"),
    name: str = typer.Option("rounds", help="deployment name"),
    add: int = typer.Option(1, help="rounds each scheduled run adds"),
) -> None:
    """Register a scheduled deployment on the Prefect server and execute its runs.

    Each scheduled run appends `--add` round(s) to params.yaml and reproduces the DAG,
    so only the new round's stages run. Stop with Ctrl-C.
    """
    _quiet()
    from datetime import timedelta

    from pipeline.flow import superalign_rounds

    try:
        _need_server()
        if (interval is None) == (cron is None):
            raise SuperalignError("serve: give exactly one of --interval or --cron")
    except SuperalignError as exc:
        _fail(exc)
    superalign_rounds.serve(
        name=name,
        interval=timedelta(minutes=interval) if interval is not None else None,
        cron=cron,
        # A scheduled run waits for one in progress (a slow round, a manual run) instead
        # of failing on the run lock; limit=1 keeps this process to one run at a time.
        parameters={"root": str(Path.cwd()), "add": add, "wait_seconds": SCHEDULED_WAIT_S},
        description="Adds the next round(s) to params.yaml and reproduces the DAG.",
        limit=1,
    )


@app.command()
def deploy(
    pool: str = typer.Option(..., help="Prefect work pool whose workers execute the runs"),
    name: str = typer.Option("rounds", help="deployment name"),
    interval: float = typer.Option(None, help="minutes between scheduled runs (optional)"),
    add: int = typer.Option(1, help="rounds each run adds"),
) -> None:
    """Create a deployment on a work pool instead of serving in this process.

    Any worker of the pool (`prefect worker start --pool NAME`) picks runs up; a
    process pool runs them on the worker's machine from this directory, a Docker or
    Kubernetes pool in a container built from this project.
    """
    _quiet()
    from datetime import timedelta

    from pipeline.flow import superalign_rounds

    try:
        _need_server()
    except SuperalignError as exc:
        _fail(exc)
    root = Path.cwd()
    deployable = superalign_rounds.from_source(
        source=str(root), entrypoint="pipeline/flow.py:superalign_rounds"
    )
    deployment_id = deployable.deploy(
        name=name,
        work_pool_name=pool,
        interval=timedelta(minutes=interval) if interval is not None else None,
        parameters={"root": str(root), "add": add, "wait_seconds": SCHEDULED_WAIT_S},
        print_next_steps=False,
    )
    typer.echo(f"deployment superalign-rounds/{name} ({deployment_id}) on pool {pool}")


@app.command()
def ui(
    prefect_port: int = typer.Option(4200, help="Prefect UI/API port"),
    mlflow_port: int = typer.Option(5000, help="MLflow UI port"),
) -> None:
    """Start the Prefect and MLflow UIs on 127.0.0.1 and print their addresses.

    Ctrl-C or SIGTERM stops both: each server runs in a process group of its own, and the
    whole group (uvicorn and gunicorn workers included) is stopped, so no server is left
    answering on its port.
    """
    import signal
    import subprocess
    import sys
    import time

    from stages.tracking import DEFAULT_TRACKING_URI, QUIET_ENV, experiment_id

    env = os.environ | QUIET_ENV
    bin_dir = Path(sys.executable).parent
    tracking = os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)
    commands = [
        [str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1"]
        + ["--port", str(prefect_port)],
        [str(bin_dir / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port)]
        + ["--backend-store-uri", tracking, "--workers", "1"],
    ]

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    procs = [subprocess.Popen(c, env=env, start_new_session=True) for c in commands]
    try:
        # Created here if new, tagged so MLflow opens it on its runs (not the GenAI overview).
        runs = f"#/experiments/{experiment_id(tracking)}/runs"
        typer.echo(f"Prefect UI: http://127.0.0.1:{prefect_port}")
        typer.echo(f"MLflow UI:  http://127.0.0.1:{mlflow_port}")
        typer.echo(f"MLflow runs: http://127.0.0.1:{mlflow_port}/{runs}")
        typer.echo(
            "for runs to show in Prefect: "
            f"export PREFECT_API_URL=http://127.0.0.1:{prefect_port}/api"
        )
        while all(p.poll() is None for p in procs):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut this short
        for p in procs:
            _signal_group(p, signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                p.wait()
    failed = [p.args[1] for p in procs if p.returncode not in (0, None, -2, 130)]
    if failed:
        typer.echo(f"error: {', '.join(failed)} stopped unexpectedly", err=True)
        raise typer.Exit(1)


def _signal_group(proc, signum) -> None:
    """Signal the process group a child leads (its workers too), if it is still there."""
    import contextlib

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


if __name__ == "__main__":
    app()
