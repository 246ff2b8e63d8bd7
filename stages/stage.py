"""What every stage's `main` shares: arguments, params, the MLflow stage run, one-line errors.

A stage module declares its own options and writes only what is particular to it:

    @stage_main("sample", __doc__, option("--queries", required=True), logs=("sample", "engine"))
    def main(stage: Stage) -> None:
        queries = read_jsonl(stage.args.queries, required=QUERY)
        ...

`--round` and `--params` are added for every stage; params.yaml is loaded and checked
before any work; the MLflow run `<stage>@<round>` is open while the body runs (and is
marked FAILED if it raises); a SuperalignError ends the process with `error: ...` and
exit code 2.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import one_line_errors
from .params import DEFAULT_PARAMS, load_params
from .records import write_json
from .round_metrics import flat
from .tracking import StageRun, campaign_name, stage_run


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    settings: dict[str, Any]


def option(*flags: str, **settings: Any) -> Option:
    """One command-line option, spelled as for `ArgumentParser.add_argument`."""
    return Option(flags, settings)


@dataclass
class Stage:
    """What a stage body gets: its arguments, the checked params, its round and MLflow run."""

    args: argparse.Namespace
    params: dict[str, Any]
    round: str
    run: StageRun | None  # None for an untracked stage

    def write_metrics(self, path: str, metrics: dict) -> None:
        """The stage's metrics file (a DVC metric), and the same figures in MLflow, on the
        stage run and the campaign run (nested keys flattened: `heldout.accuracy`)."""
        write_json(path, metrics)
        self.run.log_metrics(flat(metrics), on_campaign=True)


def stage_main(
    name: str,
    doc: str | None,
    *options: Option,
    logs: tuple[str, ...] = (),
    round_of: Callable[[argparse.Namespace, dict], str] | None = None,
    tracked: bool = True,
    dvc_name: Callable[[str], str] | None = None,
) -> Callable[[Callable[[Stage], None]], Callable[..., None]]:
    """Turn `body(stage)` into the stage's `main(argv=None)`.

    `logs` names the params sections logged on the stage run. Stages tied to a round take
    `--round`; the others (prepare, report) say which round they belong to with `round_of`.
    `tracked=False` opens no MLflow run (`stage.run` is None): for a stage that runs on
    every `dvc repro` and would log the same run again and again. `dvc_name(round)` is the
    stage's name in dvc.yaml when it is not `<name>@<round>` (`baseline`, `report`): the
    MLflow run takes it, so DVC, Prefect and MLflow name a stage alike.
    """

    def decorate(body: Callable[[Stage], None]) -> Callable[..., None]:
        @one_line_errors
        @functools.wraps(body)
        def main(argv: list[str] | None = None) -> None:
            parser = argparse.ArgumentParser(
                prog=f"python -m stages.{name}", description=(doc or name).splitlines()[0]
            )
            if round_of is None:
                parser.add_argument("--round", required=True, help="the round, e.g. r2")
            parser.add_argument("--params", default=DEFAULT_PARAMS)
            for opt in options:
                parser.add_argument(*opt.flags, **opt.settings)
            args = parser.parse_args(argv)
            params = load_params(args.params)
            round_name = args.round if round_of is None else round_of(args, params)
            if not tracked:
                body(Stage(args, params, round_name, None))
                return
            campaign = campaign_name(params["tracking"].campaign)
            run_name = dvc_name(round_name) if dvc_name else None
            with stage_run(name, round_name, campaign, run_name) as run:
                if logs:
                    run.log_params({section: params[section] for section in logs})
                body(Stage(args, params, round_name, run))

        return main

    return decorate
