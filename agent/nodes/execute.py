"""execute: screen and test each pending candidate (in parallel), keep the best attempt, confirm a fix.

A candidate is rejected, with its reason in the history, when its diff fails the static screen, when its
test run was tampered with, or when the independent confirmation disagrees with a pass (agent/verdict.py).
Only a confirmed attempt that passes every test may become the best one with nothing failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.nodes import NodeDeps, candidate_key
from agent.state import Attempt, Candidate, RunConfig
from agent.tasks import Task, TestReport, environment_problem, is_test_file
from agent.verdict import screen


def execute(state: Mapping[str, Any], deps: NodeDeps) -> dict[str, Any]:
    task, config = Task(**state["task"]), RunConfig(**state["config"])
    first = state.get("best") is None
    candidates = [Candidate(**c) for c in state.get("candidates") or []]
    if first and not candidates:
        candidates = [Candidate(files={p: task.files[p] for p in task.editable}, origin="original")]
    rejected: list[dict[str, Any]] = []
    runnable = []
    for candidate in candidates:
        flags = [] if candidate.origin == "original" else screen(task.files, candidate.files, _test_files(task))
        if flags and not config.allow_suspicious:
            rejected.append({"origin": candidate.origin, "why": "suspicious diff (--allow-suspicious to test it)",
                             "reasons": flags})
        else:
            runnable.append(candidate)
    reports = deps.runner.run(task, [{**task.files, **c.files} for c in runnable], confirm=not first)
    baseline = set(state.get("baseline_passing") or [])
    attempts = [
        Attempt(files=c.files, origin=c.origin, iteration=state.get("iteration", 0), report=r,
                regressions=len(baseline - r.passing_ids()))
        for c, r in zip(runnable, reports, strict=True)
    ]
    update: dict[str, Any] = {"candidates": [], "executions": len(runnable),
                              "tried": [candidate_key(c.files) for c in candidates]}
    if first and attempts and attempts[0].origin == "original":
        update |= _first_run(attempts[0], task)
        return update | {"history": [{"node": "execute", "tested": [_summary(a) for a in attempts]}]}
    trusted = []
    for attempt in attempts:
        if attempt.report.tampered:
            rejected.append({"origin": attempt.origin, "why": "its test run was tampered with",
                             "reasons": attempt.report.tampered[:10]})
        else:
            trusted.append(attempt)
    winner = _best_confirmed(trusted, task, deps, rejected)
    if first:  # generated code stands in for the original: it is the baseline
        update |= _first_run(winner, task) if winner is not None else {
            "status": "error", "stop_reason": "every generated candidate was rejected: "
            + "; ".join(r["why"] for r in rejected)}
    elif winner is not None and winner.rank() > Attempt(**state["best"]).rank():
        update["best"] = winner.model_dump(mode="json")
    return update | {"history": [{"node": "execute", "tested": [_summary(a) for a in attempts],
                                  "rejected": rejected}]}


def _best_confirmed(attempts: list[Attempt], task: Task, deps: NodeDeps,
                    rejected: list[dict[str, Any]]) -> Attempt | None:
    """The best attempt; one that passes every test only once an independent re-run agrees."""
    for attempt in sorted(attempts, key=Attempt.rank, reverse=True):
        if not (attempt.report.outcomes and not attempt.report.failing):
            return attempt
        confirmation = attempt.report.confirmation or deps.runner.confirm(
            task, {**task.files, **attempt.files}, sorted(attempt.report.passing_ids()))
        if confirmation.confirmed:
            return attempt.model_copy(update={"confirmation": confirmation.summary()})
        rejected.append({"origin": attempt.origin, "why": "the independent confirmation disagrees",
                         "reasons": confirmation.failures[:10]})
    return None


def _first_run(attempt: Attempt, task: Task) -> dict[str, Any]:
    """The baseline: tests that cannot run, a tampered run, or no failing test end the run with a clear reason."""
    update: dict[str, Any] = {"best": attempt.model_dump(mode="json"),
                              "baseline_passing": sorted(attempt.report.passing_ids())}
    if attempt.report.tampered:
        return update | {"status": "error", "stop_reason": "the code under test tampered with its own test run: "
                         + "; ".join(attempt.report.tampered[:5])}
    problem = environment_problem(attempt.report, set(task.editable))
    if problem:
        return update | {"status": "error", "stop_reason": f"the tests cannot run: {problem}"}
    if not attempt.report.failing and attempt.origin == "original":
        return update | {"status": "error",
                         "stop_reason": f"no failing test: all {attempt.total} tests pass; nothing to repair"}
    return update


def _test_files(task: Task) -> set[str]:
    return {p for p in task.files if is_test_file(p) or p.endswith("conftest.py")}


def _summary(attempt: Attempt) -> dict[str, Any]:
    report: TestReport = attempt.report
    return {"origin": attempt.origin, "passed": report.passed, "total": report.total,
            "regressions": attempt.regressions, **({"tampered": True} if report.tampered else {}),
            **({"problem": report.problem[:300]} if report.problem else {}),
            **({"confirmed": attempt.confirmation} if attempt.confirmation else {})}
