"""Eval jobs: the harness (evals/_harness.py) as a sandbox job program, run on a `sandbox.JobRunner`."""

from __future__ import annotations

from concurrent.futures import as_completed
from pathlib import Path
from typing import Any

from evals._progress import Progress
from sandbox import Job, JobResult, JobRunner, Limits
from sandbox.job import Preload, outer_limits

HARNESS_SOURCE = (Path(__file__).resolve().parent / "_harness.py").read_text(encoding="utf-8")


# On a warm local pool, the child for the next harness job has the job runtime imported and the harness compiled
# before the job comes (a benchmark is hundreds of jobs of this one program). The harness runs on the standard
# library alone, as a cold start does: no site-packages.
_PRELOAD = Preload(site_packages=False)


def harness_job(spec: dict[str, Any], limits: Limits) -> Job:
    """One harness run: the harness's `main` gets `spec` (its mode and what that mode needs) as its data."""
    return Job(program=HARNESS_SOURCE, data=spec, limits=limits, preload=_PRELOAD)


JOB_WALL_FACTOR = 4.0
JOB_START_S = 2.0


def diff_limits(cpu_s: float, memory_mb: int, output_bytes: int) -> Limits:
    """The sandbox's limits for a `diff` job whose inputs take `cpu_s` CPU seconds at most in all.

    The harness holds each input to its own limits; these catch what escapes them (a hung interpreter, a C loop,
    a huge output). The job's CPU time is capped (RLIMIT_CPU), which load does not move; its wall time only
    generously (JOB_WALL_FACTOR x), as a backstop: a busy machine stretches wall time, and a verdict must not
    depend on what else the machine was doing.
    """
    limits = outer_limits(per_unit_s=cpu_s, start_s=JOB_START_S, memory_mb=memory_mb, output_bytes=output_bytes)
    return limits.model_copy(update={"wall_time_s": JOB_WALL_FACTOR * limits.cpu_time_s + 10.0})


def run_all(runner: JobRunner, jobs: list[Job], progress: Progress,
            cost: list[float] | None = None, urgent: bool = False) -> list[JobResult]:
    """Submit every job at once and collect results in job order. With `cost` (expected seconds per
    job), the costliest go first, so that one slow task does not start last and finish alone.

    A result that is not `.ok` still holds the records its job sent before it died; callers may read
    them for detail (which input failed), never for a pass. `urgent` jobs start before any the runner
    still has waiting.
    """
    order = sorted(range(len(jobs)), key=lambda i: -cost[i]) if cost else range(len(jobs))
    futures = {runner.submit_job(jobs[index], urgent=urgent): index for index in order}
    results: list[JobResult | None] = [None] * len(jobs)
    for future in as_completed(futures):
        results[futures[future]] = future.result()
        progress.advance()
    return results  # type: ignore[return-value]


def failure(result: JobResult) -> str:
    """Why a job gave no verdict of its own, for a Verdict's detail."""
    why = (result.problem or result.execution.status.value)[:300]
    if result.interfered:
        why = f"the code under test wrote to the job's channel: {why}"
    return f"no result ({why})"


def single_status(result: JobResult) -> tuple[str, dict[str, Any]]:
    """The status of a job that reports one record (`program` and `crux` modes): "passed" only when the
    job ended properly with exactly that one record; otherwise why not (the record's own failure, when
    the job sent one before it died)."""
    records = result.records
    record = records[0] if len(records) == 1 and isinstance(records[0], dict) else {}
    status = record.get("s")
    if result.ok and status is not None:
        return status, record
    if result.ok:
        return f"malformed result ({len(records)} records)", {}
    if status is not None and status != "passed":
        return status, record
    return failure(result), {}
