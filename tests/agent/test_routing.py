"""Routing is pure: every branch of every router, from hand-built states."""

from __future__ import annotations

from typing import Any

import pytest

from agent.budget import exhausted
from agent.routing import (
    generates_first,
    route_after_execute,
    route_after_patch,
    route_after_trace,
    route_start,
)
from agent.state import RunConfig
from agent.tasks import Task

NO_MODEL = RunConfig().model_dump()
WITH_MODEL = RunConfig(model="openai:m", patcher="model").model_dump()
BOTH = RunConfig(model="openai:m", patcher="both").model_dump()


def report(*outcomes: str) -> dict[str, Any]:
    return {"outcomes": [{"id": f"t{i}", "outcome": o} for i, o in enumerate(outcomes)], "coverage": {},
            "problem": "", "duration_s": 0.0}


def state(config=NO_MODEL, **values: Any) -> dict[str, Any]:
    base = {"task_sha256": "0" * 64, "generate_first": False, "config": config, "iteration": 0,
            "status": "running", "best": {"files": {}, "origin": "original", "report": report("passed", "failed")}}
    return base | values


def test_start_generates_only_without_code():
    assert not generates_first(Task(kind="function", files={"a.py": "x = 1\n"}, editable=["a.py"]))
    assert generates_first(Task(kind="function", files={"a.py": "  \n"}, editable=["a.py"]))
    assert not generates_first(Task(kind="project", files={"p/__init__.py": "", "p/m.py": "x = 1\n"},
                                    editable=["p/__init__.py", "p/m.py"]))
    assert route_start(state()) == "execute"
    assert route_start(state(generate_first=True)) == "generate"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "trace"),
        ({"status": "error"}, "finish"),
        ({"best": {"files": {}, "origin": "x", "report": report("passed", "skipped")}}, "finish"),
        ({"iteration": 8}, "finish"),
        ({"elapsed_s": 601.0}, "finish"),
        ({"tokens_used": 10**9}, "trace"),  # no model: tokens are not a bound
    ],
)
def test_after_execute(values, expected):
    assert route_after_execute(state(**values)) == expected


def test_after_execute_token_budget_binds_a_model_run():
    assert route_after_execute(state(WITH_MODEL, tokens_used=10**9)) == "finish"
    assert route_after_execute(state(WITH_MODEL, tokens_used=10)) == "trace"


def test_a_report_without_tests_is_not_a_fix():
    assert route_after_execute(state(best={"files": {}, "origin": "x", "report": report()})) == "trace"


@pytest.mark.parametrize(("config", "expected"), [(NO_MODEL, "patch"), (WITH_MODEL, "reason"), (BOTH, "reason")])
def test_after_trace(config, expected):
    assert route_after_trace(state(config)) == expected


@pytest.mark.parametrize(
    ("config", "values", "expected"),
    [
        (NO_MODEL, {"candidates": [{"files": {}, "origin": "m"}]}, "execute"),
        (NO_MODEL, {"candidates": []}, "finish"),  # the mutation engine ran dry
        (WITH_MODEL, {"candidates": []}, "trace"),  # a sampling model may do better next time
        (WITH_MODEL, {"candidates": [], "iteration": 8}, "finish"),
        (BOTH, {"candidates": [{"files": {}, "origin": "m"}], "iteration": 8}, "execute"),
    ],
)
def test_after_patch(config, values, expected):
    assert route_after_patch(state(config, **values)) == expected


def test_budget_reasons_name_the_bound():
    config = RunConfig(model="openai:m", patcher="model", max_iterations=3, max_tokens=50, max_time_s=9)
    assert exhausted({"iteration": 2, "tokens_used": 49, "elapsed_s": 8.9}, config) is None
    assert "iteration" in exhausted({"iteration": 3}, config)
    assert "token" in exhausted({"tokens_used": 50}, config)
    assert "time" in exhausted({"elapsed_s": 9.0}, config)


def test_model_none_always_mutates():
    assert RunConfig(model="none", patcher="model").uses_mutation
    assert not RunConfig(model="none", patcher="both").uses_model
    assert RunConfig(model="openai:x", patcher="both").uses_mutation
