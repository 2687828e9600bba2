"""Turning a harness job into a sandbox request, and the sandbox's result back into records."""

from __future__ import annotations

import json
import marshal
import secrets
from concurrent.futures import Future, as_completed
from pathlib import Path
from typing import Any, Protocol

from evals._harness import JOB_FILE
from evals._progress import Progress
from sandbox._models import ExecRequest, ExecResult, Limits

HARNESS_SOURCE = (Path(__file__).resolve().parent / "_harness.py").read_text(encoding="utf-8")


class JobRunner(Protocol):
    """What scoring needs from the sandbox: `sandbox.Pool` satisfies it."""

    def submit(self, request: ExecRequest) -> Future[ExecResult]: ...


class HarnessJob:
    """One harness run: the request to submit and the nonce that authenticates its result lines."""

    def __init__(self, job: dict[str, Any], limits: Limits) -> None:
        self.nonce = secrets.token_hex(16)
        # marshal: the harness can read it without importing anything (the host trusts its own bytes).
        payload = marshal.dumps({**job, "nonce": self.nonce})
        self.request = ExecRequest(code=HARNESS_SOURCE, files={JOB_FILE: payload}, limits=limits)

    def records(self, result: ExecResult) -> list[dict[str, Any]]:
        """The harness's own result lines; anything else on stdout is ignored."""
        prefix = self.nonce + " "
        found = []
        for line in result.stdout.splitlines():
            if line.startswith(prefix):
                try:
                    found.append(json.loads(line[len(prefix):]))
                except json.JSONDecodeError:
                    break  # a line cut short by the kill that ended the run
        return found


def run_all(runner: JobRunner, jobs: list[HarnessJob], progress: Progress,
            cost: list[float] | None = None) -> list[ExecResult]:
    """Submit every job at once and collect results in job order. With `cost` (expected seconds per
    job), the costliest go first, so that one slow task does not start last and finish alone."""
    order = sorted(range(len(jobs)), key=lambda i: -cost[i]) if cost else range(len(jobs))
    futures = {runner.submit(jobs[index].request): index for index in order}
    results: list[ExecResult | None] = [None] * len(jobs)
    for future in as_completed(futures):
        results[futures[future]] = future.result()
        progress.advance()
    return results  # type: ignore[return-value]
