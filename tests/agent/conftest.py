"""Fixtures of the agent's tests: one sandbox pool per session, and running the graph for real."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agent.graph import build_graph, initial_state, thread_config
from agent.nodes import NodeDeps
from agent.state import RunConfig
from agent.tasks import Task, TestRunner


@pytest.fixture(scope="session")
def pool():
    import sandbox

    with sandbox.Pool(workers=2) as shared:
        yield shared


@pytest.fixture
def run_graph(pool):
    def run(task: Task, config: RunConfig, model: Any = None, checkpointer: Any = None) -> dict[str, Any]:
        deps = NodeDeps(runner=TestRunner(pool, test_timeout_s=config.test_timeout_s), model=model)
        graph = build_graph(deps, checkpointer)
        run_id = uuid.uuid4().hex[:8]
        if checkpointer is None:
            return graph.invoke(initial_state(run_id, task, config), {"recursion_limit": 1000})
        return graph.invoke(initial_state(run_id, task, config), thread_config(run_id))

    return run
