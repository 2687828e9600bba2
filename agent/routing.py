"""Where the loop goes next: pure functions of the state, one per branching node."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from agent.budget import exhausted
from agent.state import RunConfig
from agent.tasks import Task


def generates_first(task: Task) -> bool:
    """Write the code first when a function-level task has none (a project's empty __init__.py is code)."""
    return task.kind == "function" and not task.files.get(task.editable[0], "").strip()


def route_start(state: Mapping[str, Any]) -> Literal["generate", "execute"]:
    return "generate" if state.get("generate_first") else "execute"


def route_after_execute(state: Mapping[str, Any]) -> Literal["trace", "finish"]:
    if state.get("status", "running") != "running" or _all_pass(state):
        return "finish"
    return "finish" if exhausted(state, RunConfig(**state["config"])) else "trace"


def route_after_trace(state: Mapping[str, Any]) -> Literal["reason", "patch"]:
    return "reason" if RunConfig(**state["config"]).uses_model else "patch"


def route_after_patch(state: Mapping[str, Any]) -> Literal["execute", "trace", "finish"]:
    """Test new candidates; with none, a sampling model may try again, an exhausted mutation engine stops."""
    if state.get("candidates"):
        return "execute"
    config = RunConfig(**state["config"])
    if config.uses_model and not exhausted(state, config):
        return "trace"
    return "finish"


def _all_pass(state: Mapping[str, Any]) -> bool:
    best = state.get("best")
    if not best:
        return False
    outcomes = best["report"]["outcomes"]
    return bool(outcomes) and all(o["outcome"] in ("passed", "skipped") for o in outcomes)
