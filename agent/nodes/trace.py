"""trace: pick the failing test to work on, rank suspicious lines, and render the failure for the model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.failing_test import FailedTest, called_function, describe
from agent.feedback import render_trace, test_block
from agent.localize import Suspect, rank_functions, rank_lines
from agent.nodes import NodeDeps
from agent.state import Attempt, Focus, RunConfig
from agent.tasks import Task

MAX_SUSPECTS = 50


def trace(state: Mapping[str, Any], deps: NodeDeps) -> dict[str, Any]:
    task, config, best = Task(**state["task"]), RunConfig(**state["config"]), Attempt(**state["best"])
    sources = {**task.files, **best.files}
    suspects = rank_lines(best.report, {p: sources[p] for p in task.editable})
    failed = describe(best.report.failing[0], sources)
    file, function = focus_location(task, suspects, failed)
    rendered = render_trace(deps.tracer, config.feedback, sources[file], file, failed) if config.uses_model else ""
    focus = Focus(test_id=failed.test_id, file=file, function=function, whole_file=task.kind == "function",
                  test_block=test_block(failed),
                  trace=rendered, call=failed.call, expected=failed.expected)
    return {"suspects": [s.model_dump() for s in suspects[:MAX_SUSPECTS]], "focus": focus.model_dump(),
            "history": [{"node": "trace", "test": failed.test_id, "top": [s.model_dump() for s in suspects[:3]]}]}


def focus_location(task: Task, suspects: list[Suspect], failed: FailedTest) -> tuple[str, str | None]:
    """The file and function a patch should change: the called function if it is under repair, else the
    most suspicious function, else the first editable file as a whole."""
    if task.kind == "function":
        return task.editable[0], task.entry_point
    ranked = rank_functions(suspects)
    called = called_function(failed.call) if failed.call else None
    for file, function, _ in ranked:
        if function == called:
            return file, function
    if ranked:
        return ranked[0][0], ranked[0][1]
    return (suspects[0].file if suspects else task.editable[0]), None
