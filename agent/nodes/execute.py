"""execute: run the tests on each pending candidate (in parallel) and keep the best attempt so far."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.nodes import NodeDeps, candidate_key
from agent.state import Attempt, Candidate
from agent.tasks import Task, TestReport, environment_problem


def execute(state: Mapping[str, Any], deps: NodeDeps) -> dict[str, Any]:
    task = Task(**state["task"])
    first = state.get("best") is None
    candidates = [Candidate(**c) for c in state.get("candidates") or []]
    if first and not candidates:
        candidates = [Candidate(files={p: task.files[p] for p in task.editable}, origin="original")]
    reports = deps.runner.run(task, [{**task.files, **c.files} for c in candidates])
    baseline = set(state.get("baseline_passing") or [])
    attempts = [
        Attempt(files=c.files, origin=c.origin, iteration=state.get("iteration", 0), report=r,
                regressions=len(baseline - r.passing_ids()))
        for c, r in zip(candidates, reports, strict=True)
    ]
    update: dict[str, Any] = {
        "candidates": [],
        "executions": len(candidates),
        "tried": [candidate_key(c.files) for c in candidates],
        "history": [{"node": "execute", "tested": [_summary(a) for a in attempts]}],
    }
    winner = max(attempts, key=Attempt.rank)
    if first:
        update |= _first_run(winner, task)
    elif winner.rank() > Attempt(**state["best"]).rank():
        update["best"] = winner.model_dump(mode="json")
    return update


def _first_run(attempt: Attempt, task: Task) -> dict[str, Any]:
    """The baseline: tests that cannot run, or do not fail, end the run with a clear reason."""
    update: dict[str, Any] = {"best": attempt.model_dump(mode="json"),
                              "baseline_passing": sorted(attempt.report.passing_ids())}
    problem = environment_problem(attempt.report, set(task.editable))
    if problem:
        return update | {"status": "error", "stop_reason": f"the tests cannot run: {problem}"}
    if not attempt.report.failing and attempt.origin == "original":
        return update | {"status": "error",
                         "stop_reason": f"no failing test: all {attempt.total} tests pass; nothing to repair"}
    return update


def _summary(attempt: Attempt) -> dict[str, Any]:
    report: TestReport = attempt.report
    return {"origin": attempt.origin, "passed": report.passed, "total": report.total,
            "regressions": attempt.regressions}
