"""trace: pick the failing test to work on, rank suspicious lines, and render the failure for the model."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from agent.failing_test import FailedTest, called_function, describe
from agent.feedback import render_trace, test_block
from agent.localize import Suspect, rank_functions, rank_lines
from agent.nodes import NodeDeps
from agent.persistence import load_task
from agent.state import Attempt, Focus, RunConfig
from agent.tasks import Task, TestReport, missing_name, narrowed_to

MAX_SUSPECTS = 50


def trace(state: Mapping[str, Any], deps: NodeDeps) -> dict[str, Any]:
    task, config, best = load_task(state, deps.snapshots), RunConfig(**state["config"]), Attempt(**state["best"])
    sources = {**task.files, **best.files}
    started = time.monotonic()
    spectrum = _with_coverage(state, task, best, deps)
    tested_s = round(time.monotonic() - started, 3) if spectrum is not best.report else 0.0
    suspects = rank_lines(spectrum, {p: sources[p] for p in task.editable})
    failed = describe(best.report.failing[0], sources)
    fruitless = set(state.get("fruitless") or [])
    missing = missing_name(failed.message, task.editable) if task.kind == "project" else None
    if missing is not None and f"{missing[0]}::{missing[1]}" not in fruitless:
        # A test uses a name the module lacks (the fix adds a function): that is where the patch goes.
        focus = Focus(test_id=failed.test_id, file=missing[0], function=missing[1], adds=True,
                      test_block=_uses(sources, failed, missing[1]))
        file, function = missing
    else:
        file, function = focus_location(task, suspects, failed, fruitless)
        rendered = render_trace(deps.tracer, config.feedback, sources[file], file, failed) if config.uses_model else ""
        shown = render_trace(deps.tracer, "trace", sources[file], file, failed) \
            if config.show_trace and not rendered else ""
        focus = Focus(test_id=failed.test_id, file=file, function=function, whole_file=task.kind == "function",
                      test_block=test_block(failed), also=_next_suspects(task, suspects, fruitless, file, function),
                      trace=rendered, shown_trace=shown, call=failed.call, expected=failed.expected)
    top = [{"file": f, "function": fn, "score": round(score, 4)} for f, fn, score in rank_functions(suspects)[:5]]
    # The spectrum stays with the best attempt: later steps on the same best do not trace its tests again.
    kept = {"best": best.model_copy(update={"report": spectrum}).model_dump(mode="json")} \
        if spectrum is not best.report else {}
    return {**kept, "suspects": [s.model_dump() for s in suspects[:MAX_SUSPECTS]], "focus": focus.model_dump(),
            "history": [{"node": "trace", "test": failed.test_id, "focus": f"{file}::{function}", "also": focus.also,
                         "tested_s": tested_s,  # of the node's time, a traced test run (a new best's spectrum)
                         "top": [s.model_dump() for s in suspects[:3]], "top_functions": top}]}


def _with_coverage(state: Mapping[str, Any], task: Task, best: Attempt, deps: NodeDeps) -> TestReport:
    """The best attempt's report with per-test lines. Candidates run without line tracing (it slows every test
    of every candidate); a new best gets its spectrum here, once: its failing tests and their files' others."""
    report = best.report
    if any(report.coverage.values()) or not report.failing:
        return report
    files = {o.id.split("::")[0] for o in report.failing}
    # (old pytest names a class's tests Class::()::test, which it does not take as an argument)
    ids = sorted(o.id.replace("::()", "") for o in report.outcomes if o.id.split("::")[0] in files)
    traced = deps.runner.run(narrowed_to(task, ids), [{**task.files, **best.files}],
                             ignore=set(state.get("baseline_ignored") or []))[0]
    return report.model_copy(update={"coverage": traced.coverage}) if not traced.problem else report


SHOWN_WITH_FOCUS = 2  # suspects shown after the focus: a two-function fix, or the next suspect, in one step


def _next_suspects(task: Task, suspects: list[Suspect], fruitless: set[str], file: str,
                   function: str | None) -> list[str]:
    if task.kind != "project" or function is None:
        return []
    ranked = [f"{f}::{fn}" for f, fn, _ in rank_functions(suspects)]
    others = [item for item in ranked if item != f"{file}::{function}"]
    fresh = [item for item in others if item not in fruitless] or others  # all tried: the ranking starts again
    return fresh[:SHOWN_WITH_FOCUS]


def focus_location(task: Task, suspects: list[Suspect], failed: FailedTest,
                   fruitless: set[str] = frozenset()) -> tuple[str, str | None]:
    """The file and function a patch should change: the called function if it is under repair, else the
    most suspicious function, else the first editable file as a whole. A function whose patches changed
    nothing or made things worse (`fruitless`, as file::function) is passed over for the next suspect; once
    every suspect has been tried, the ranking starts again."""
    if task.kind == "function":
        return task.editable[0], task.entry_point
    ranked = rank_functions(suspects)
    fresh = [item for item in ranked if f"{item[0]}::{item[1]}" not in fruitless] or ranked
    called = called_function(failed.call) if failed.call else None
    for file, function, _ in fresh:
        if function.rsplit(".", 1)[-1] == called:
            return file, function
    if fresh:
        return fresh[0][0], fresh[0][1]
    return (suspects[0].file if suspects else task.editable[0]), None


def _uses(sources: dict[str, str], failed: FailedTest, name: str, limit: int = 40) -> str:
    """The Failed Test block for a missing name: the lines of the failing test's file that use it, then the error."""
    test_file = failed.test_id.split("::", 1)[0]
    lines = sources.get(test_file, "").splitlines()
    used = [f"{test_file}:{n}: {line.strip()}" for n, line in enumerate(lines, 1) if name in line][:limit]
    error = next((line.strip() for line in reversed(failed.message.splitlines()) if name in line), "")
    return "\n".join([*used, error]).strip() + "\n"
