"""Eval jobs: the harness (evals/_harness.py) as a sandbox job program, run on a `sandbox.JobRunner`."""

from __future__ import annotations

from concurrent.futures import as_completed
from pathlib import Path
from typing import Any

from evals._progress import Progress
from sandbox import Job, JobResult, JobRunner, Limits

HARNESS_SOURCE = (Path(__file__).resolve().parent / "_harness.py").read_text(encoding="utf-8")


def harness_job(spec: dict[str, Any], limits: Limits) -> Job:
    """One harness run: the harness's `main` gets `spec` (its mode and what that mode needs) as its data."""
    return Job(program=HARNESS_SOURCE, data=spec, limits=limits)


def run_all(runner: JobRunner, jobs: list[Job], progress: Progress,
            cost: list[float] | None = None) -> list[JobResult]:
    """Submit every job at once and collect results in job order. With `cost` (expected seconds per
    job), the costliest go first, so that one slow task does not start last and finish alone.

    A result that is not `.ok` still holds the records its job sent before it died; callers may read
    them for detail (which input failed), never for a pass.
    """
    order = sorted(range(len(jobs)), key=lambda i: -cost[i]) if cost else range(len(jobs))
    futures = {runner.submit_job(jobs[index]): index for index in order}
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
