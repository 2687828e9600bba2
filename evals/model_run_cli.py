"""The `--model` options of `semcoder eval`: generation, refinement rounds and the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import click

from agent.models import Dialect
from evals._config import EvalConfig
from evals._model_run_config import ModelRunConfig
from evals.loaders import DatasetError
from sandbox import SandboxError

if TYPE_CHECKING:
    from evals._round_report import RunReport as _RunReport

_FIELDS = ModelRunConfig.model_fields


def _file_text(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """agent.repair_settings' callback, imported when an option needs it: `semcoder eval --samples` (whose start-up
    counts in every benchmark run) never does."""
    if value is None:
        return None
    from agent.repair_settings import file_text

    return file_text(context, parameter, value)


_OPTIONS = [
    click.option("--model", "model_url", multiple=True, metavar="URL", help=_FIELDS["model_url"].description),
    click.option("--model-name", default="semcoder/semcoder_s_1030", show_default=True,
                 help=_FIELDS["model_name"].description),
    click.option("--n", type=click.IntRange(min=1), default=1, show_default=True, help=_FIELDS["n"].description),
    click.option("--temperature", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
                 help=_FIELDS["temperature"].description),
    click.option("--max-tokens", type=click.IntRange(min=1), default=512, show_default=True,
                 help=_FIELDS["max_tokens"].description),
    click.option("--refine-rounds", type=click.IntRange(0, 5), default=0, show_default=True,
                 help=_FIELDS["refine_rounds"].description),
    click.option("--feedback", type=click.Choice(["semcoder", "trace", "blocks"]), default="semcoder",
                 show_default=True, help=_FIELDS["feedback"].description),
    click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("eval-out"),
                 show_default=True, help=_FIELDS["out_dir"].description),
    click.option("--limit", type=click.IntRange(min=1), default=None, help=_FIELDS["limit"].description),
    click.option("--tasks", "task_ids", multiple=True, help="Only this task id (repeatable)."),
    click.option("--dialect", type=click.Choice(get_args(Dialect)), default="auto", show_default=True,
                 help=_FIELDS["dialect"].description),
    click.option("--system-prompt-file", "system_prompt", default=None, metavar="PATH", callback=_file_text,
                 help=f"{_FIELDS['system_prompt'].description} Read from the file PATH."),
]


def model_run_options(command: Callable) -> Callable:
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def _summary(report: _RunReport) -> str:
    rounds = ", ".join(f"round {r.round} {100 * r.pass_at_1:.2f}" for r in report.rounds)
    return f"{report.benchmark}: {report.n_tasks} tasks, pass@1 per round: {rounds}"


def run_from_model(benchmark: str, data: str | None, eval_config: EvalConfig, quiet: bool, as_json: bool,
                   **options) -> None:
    from agent.models import ModelError  # the model clients: only for a model run
    from evals.model_run import run_model_eval

    try:
        config = ModelRunConfig(benchmark=benchmark, data=data, **options)
        report = run_model_eval(config, eval_config, show_progress=not quiet)
    except (DatasetError, ValueError, ModelError, SandboxError) as exc:  # the error boundary: one line, no traceback
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(report.model_dump()) if as_json else _summary(report))
    if not quiet:
        click.echo(f"report: {config.out_dir / 'report.json'}, {config.out_dir / 'report.md'}, "
                   f"{config.out_dir / 'pass_at_1.png'}", err=True)
