"""`semcoder eval BENCH --samples FILE`: score samples in the sandbox and print the result."""

from __future__ import annotations

import json
from pathlib import Path

import click

from evals._config import EvalConfig
from evals.loaders import BENCHMARKS, DatasetError
from evals.model_run_cli import model_run_options, run_from_model
from evals.scoring import score_file
from sandbox import SandboxError
from sandbox.executor import ExecutorChoice, executor_options


def _summary(report) -> str:
    pass5 = "n/a" if report.pass_at_5 is None else f"{100 * report.pass_at_5:.2f}"
    n = sum(score.n for score in report.per_task.values())
    return (f"{report.benchmark}: {report.n_tasks} tasks, {n} samples, "
            f"pass@1 {100 * report.pass_at_1:.2f}, pass@5 {pass5}")


@click.command("eval")
@click.argument("benchmark", type=click.Choice(BENCHMARKS))
@click.option("--samples", "samples_path", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSONL of {"task_id", "completion"|"solution"}; for CRUXEval the generations JSON '
                   '{"sample_0": [str, ...]}.')
@click.option("--data", default=None,
              help="Benchmark data: a local file, or a Hugging Face Hub dataset name; default: the copy shipped "
                   "in evals/data.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary line.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Sandbox workers (default: one per CPU).")
@click.option("--memory-mb", type=click.IntRange(min=64), default=EvalConfig().memory_mb, show_default=True,
              help="Memory limit per sandbox job.")
@click.option("--partial", is_flag=True, help="Score only the tasks that have samples (default: all must).")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@executor_options
@model_run_options
def eval_command(benchmark: str, samples_path: Path | None, data: str | None, as_json: bool, workers: int | None,
                 memory_mb: int, partial: bool, quiet: bool, executor: ExecutorChoice, **model_options) -> None:
    """Score SAMPLES on BENCHMARK, or generate (and refine) with --model; progress on stderr, result on stdout."""
    config = EvalConfig(workers=workers, memory_mb=memory_mb, executor=executor)
    if (samples_path is None) == (not model_options["model_url"]):
        raise click.UsageError("pass exactly one of --samples FILE or --model URL")
    if samples_path is None:
        run_from_model(benchmark, data, config, quiet, as_json, **model_options)
        return
    try:
        report = score_file(benchmark, samples_path, data=data, config=config, partial=partial,
                            show_progress=not quiet)
    except (DatasetError, SandboxError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(report.model_dump(mode="json", by_alias=True)) if as_json else _summary(report))
