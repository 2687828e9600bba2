"""Scoring samples of any benchmark: the one entry point the CLI (and later generation) uses.

`score_file` reads a samples file; `score_samples` takes samples already in memory (what a
generate/refine step produces), so every source of samples goes through the same verdicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from evals._config import EvalConfig
from evals._report import Report, Verdict, build_report
from evals._samples import Sample, SamplesError, read_crux_samples, read_program_samples
from evals._scoring_diff import score_diff
from evals._scoring_program import score_program
from evals.cruxeval import score_cruxeval
from evals.loaders import BENCHMARKS, load_benchmark
from sandbox import JobRunner
from sandbox.executor import open_job_runner

_DIFF_DATASET = {"humaneval+": "humaneval", "mbpp+": "mbpp"}
_CRUX_MODE = {"cruxeval-i": "input", "cruxeval-o": "output"}


@contextmanager
def open_runner(config: EvalConfig) -> Iterator[JobRunner]:
    """Where the jobs run (config.executor: this machine's warm pool, or one per node of a Ray cluster), closed
    afterwards."""
    with open_job_runner(config.executor, workers=config.workers) as runner:
        yield runner


def read_samples(benchmark: str, tasks: list[Any], path: Path) -> list[Sample]:
    if benchmark in _CRUX_MODE:
        return read_crux_samples(path, {task.task_id for task in tasks})
    return read_program_samples(path, {task.task_id: task.prompt for task in tasks})


def verdicts_for(
    benchmark: str, tasks: list[Any], samples: list[Sample], runner: JobRunner, config: EvalConfig,
    show_progress: bool = True,
) -> list[Verdict]:
    """Verdicts in sample order. Identical samples of a task (common at low temperature) run once."""
    unique = list({(s.task_id, s.text): s for s in samples}.values())
    verdicts = _route(benchmark, tasks, unique, runner, config, show_progress)
    by_sample = {(s.task_id, s.text): v for s, v in zip(unique, verdicts, strict=True)}
    return [by_sample[(s.task_id, s.text)] for s in samples]


def _route(
    benchmark: str, tasks: list[Any], samples: list[Sample], runner: JobRunner, config: EvalConfig,
    show_progress: bool,
) -> list[Verdict]:
    if benchmark in _DIFF_DATASET:
        return score_diff(_DIFF_DATASET[benchmark], tasks, samples, runner, config, show_progress)
    if benchmark in _CRUX_MODE:
        return score_cruxeval(_CRUX_MODE[benchmark], tasks, samples, runner, config, show_progress)
    return score_program(tasks, samples, runner, config, show_progress)


def score_samples(
    benchmark: str, tasks: list[Any], samples: list[Sample], runner: JobRunner, config: EvalConfig,
    *, partial: bool = False, show_progress: bool = True,
) -> Report:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    if not samples:
        raise SamplesError("no samples to score")
    missing = {task.task_id for task in tasks} - {sample.task_id for sample in samples}
    if missing and not partial:
        raise SamplesError(
            f"{len(missing)} of {len(tasks)} tasks have no sample (e.g. {sorted(missing)[:3]}); "
            "pass --partial to score only the tasks that have samples"
        )
    verdicts = verdicts_for(benchmark, tasks, samples, runner, config, show_progress)
    return build_report(benchmark, [task.task_id for task in tasks], verdicts)


def score_file(
    benchmark: str, samples_path: Path, *, data: str | Path | None = None, config: EvalConfig | None = None,
    runner: JobRunner | None = None, partial: bool = False, show_progress: bool = True,
) -> Report:
    """Load the benchmark (shipped copy, local file or hub name), read the samples file, score it."""
    config = config or EvalConfig()
    tasks = load_benchmark(benchmark, data)
    samples = read_samples(benchmark, tasks, Path(samples_path))
    if runner is not None:
        return score_samples(benchmark, tasks, samples, runner, config, partial=partial, show_progress=show_progress)
    with open_runner(config) as pool:
        return score_samples(benchmark, tasks, samples, pool, config, partial=partial, show_progress=show_progress)
