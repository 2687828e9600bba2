"""execute: screen and test each pending candidate (in parallel), keep the best attempt, confirm a fix.

A candidate is rejected, with its reason in the history, when its diff fails the static screen, when its
test run was tampered with, or when the independent confirmation disagrees with a pass (agent/verdict.py).
Only a confirmed attempt that passes every test may become the best one with nothing failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.nodes import NodeDeps, candidate_key
from agent.persistence import load_task
from agent.state import Attempt, Candidate, RunConfig
from agent.tasks import Task, TestReport, environment_problem, is_target, is_test_file, missing_name
from agent.verdict import screen


def execute(state: Mapping[str, Any], deps: NodeDeps) -> dict[str, Any]:
    task, config = load_task(state, deps.snapshots), RunConfig(**state["config"])
    first = state.get("best") is None
    candidates = [Candidate(**c) for c in state.get("candidates") or []]
    if first and not candidates:
        candidates = [Candidate(files={}, origin="original")]  # attempts hold only what they change
    rejected: list[dict[str, Any]] = []
    runnable = []
    for candidate in candidates:
        # The screen is for the model's patches; the mutation engine only swaps operators and constants of the
        # file's own code, which adds nothing it looks for (and re-parsing a large file per mutant is the loop's
        # biggest own cost on youtube-dl).
        trusted = candidate.origin == "original" or candidate.origin.startswith("mutation ")
        flags = [] if trusted else screen(task.files, candidate.files, _test_files(task))
        if flags and not config.allow_suspicious:
            rejected.append({"origin": candidate.origin, "why": "suspicious diff (--allow-suspicious to test it)",
                             "reasons": flags})
        else:
            runnable.append(candidate)
    baseline = set(state.get("baseline_passing") or [])
    failing_before = set(state.get("baseline_failing") or [])
    ignored = set(state.get("baseline_ignored") or [])
    reports = deps.runner.run(task, [{**task.files, **c.files} for c in runnable], confirm=not first,
                              first=None if first else _first_stage(baseline, failing_before, ignored),
                              timeouts=_timeouts(state, config), baseline=first,
                              ignore=ignored, coverage=first)  # candidates run untraced: see trace's spectrum
    attempts = [
        Attempt(files=c.files, origin=c.origin, iteration=state.get("iteration", 0), report=r,
                regressions=len(_in_selection(baseline, r) - r.passing_ids()),
                fixed=len(failing_before & r.passing_ids()),
                missing_names=sum(missing_name(o.message, task.editable) is not None for o in r.failing),
                recovered=r.ignored_passed)
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
    winner = _best_confirmed(trusted, task, deps, rejected, _timeouts(state, config))
    if first:  # generated code stands in for the original: it is the baseline
        update |= _first_run(winner, task) if winner is not None else {
            "status": "error", "stop_reason": "every generated candidate was rejected: "
            + "; ".join(r["why"] for r in rejected)}
    elif winner is not None and winner.rank() > Attempt(**state["best"]).rank():
        update["best"] = winner.model_dump(mode="json")
    elif state.get("focus") and any(c.origin.startswith("model") for c in candidates):
        # The model's patches of this function changed nothing for the better: the next step looks elsewhere.
        focus = state["focus"]
        update["fruitless"] = [f"{focus['file']}::{focus['function']}", *focus.get("also", [])]
    return update | {"history": [{"node": "execute", "tested": [_summary(a) for a in attempts],
                                  "rejected": rejected}]}


def _best_confirmed(attempts: list[Attempt], task: Task, deps: NodeDeps, rejected: list[dict[str, Any]],
                    timeouts: dict[str, float]) -> Attempt | None:
    """The best attempt; one that passes every test only once an independent re-run agrees."""
    for attempt in sorted(attempts, key=Attempt.rank, reverse=True):
        if not (attempt.report.outcomes and not attempt.report.failing) or attempt.report.selection is not None:
            return attempt
        confirmation = attempt.report.confirmation or deps.runner.confirm(
            task, {**task.files, **attempt.files}, sorted(attempt.report.passing_ids()), timeouts)
        if confirmation.confirmed:
            return attempt.model_copy(update={"confirmation": confirmation.summary()})
        rejected.append({"origin": attempt.origin, "why": "the independent confirmation disagrees",
                         "reasons": confirmation.failures[:10]})
    return None


def _first_run(attempt: Attempt, task: Task) -> dict[str, Any]:
    """The baseline: tests that cannot run, a tampered run, or no failing test end the run with a clear reason."""
    report = attempt.report
    # Failures that are not the targets (a test of the same file that was already broken) are left alone: out of
    # every later report, the localization and the verdict.
    ignored = {o.id for o in report.failing if not is_target(o.id, task.targets)}
    attempt = attempt.model_copy(update={"report": report.without(ignored)})
    update: dict[str, Any] = {"best": attempt.model_dump(mode="json"),
                              "baseline_passing": sorted(report.passing_ids()),
                              "baseline_failing": sorted(o.id for o in report.failing if o.id not in ignored),
                              "baseline_ignored": sorted(ignored),
                              "baseline_durations": {o.id: o.duration_s for o in report.outcomes}}
    if attempt.report.tampered:
        return update | {"status": "error", "stop_reason": "the code under test tampered with its own test run: "
                         + "; ".join(attempt.report.tampered[:5])}
    problem = environment_problem(attempt.report, set(task.editable))
    if problem:
        return update | {"status": "error", "stop_reason": f"the tests cannot run: {problem}"}
    if task.targets and not any(is_target(o.id, task.targets) for o in report.outcomes):
        return update | {"status": "error", "stop_reason": "no test matches the selection's node ids: "
                         + ", ".join(task.targets[:5])}
    if not attempt.report.failing and attempt.origin == "original":
        what = f"the selected tests pass ({len(ignored)} other failing test(s) left alone)" if task.targets \
            else f"all {attempt.total} tests pass"
        return update | {"status": "error", "stop_reason": f"no failing test: {what}; nothing to repair"}
    return update


def _first_stage(passing: set[str], failing: set[str], ignored: set[str] = frozenset()) -> list[str] | None:
    """What a candidate runs first: the tests that failed and the regression set (tests of the same test files
    that passed), and the failures left alone there (their recovery ranks candidates); None where that is every
    test (a small suite runs whole at once)."""
    files = {test_id.split("::")[0] for test_id in failing}
    regression = {test_id for test_id in passing | ignored if test_id.split("::")[0] in files}
    chosen = failing | regression
    return None if not failing or chosen >= passing | failing | ignored else sorted(chosen)


def _timeouts(state: Mapping[str, Any], config: RunConfig) -> dict[str, float]:
    """Per-test limits from the baseline: a slow test gets room (3x its time + 1 s), never less than the default."""
    return {test_id: max(config.test_timeout_s, 3 * seconds + 1.0)
            for test_id, seconds in (state.get("baseline_durations") or {}).items()}


def _in_selection(tests: set[str], report: TestReport) -> set[str]:
    return tests if report.selection is None else tests & set(report.selection)


def _test_files(task: Task) -> set[str]:
    return {p for p in task.files if is_test_file(p) or p.endswith("conftest.py")}


def _summary(attempt: Attempt) -> dict[str, Any]:
    report: TestReport = attempt.report
    return {"origin": attempt.origin, "passed": report.passed, "total": report.total,
            "regressions": attempt.regressions, **({"tampered": True} if report.tampered else {}),
            **({"problem": report.problem[:300]} if report.problem else {}),
            **({"confirmed": attempt.confirmation} if attempt.confirmation else {})}
