"""Fixtures of the agent's tests: one sandbox pool per session, and running the graph for real."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agent.graph import build_graph, initial_state, thread_config
from agent.nodes import NodeDeps
from agent.persistence import RunStore
from agent.state import RunConfig
from agent.tasks import Task, TestRunner


@pytest.fixture(scope="session")
def chat_tokenizer() -> Any:
    """A tiny tokenizer trained here, with the ChatML Jinja template (the chat dialect's servers render by it)."""
    from training.tiny_model import PRESETS, build_tokenizer

    return build_tokenizer(PRESETS["test"])


@pytest.fixture(scope="session")
def pool():
    import sandbox

    with sandbox.Pool(workers=2) as shared:
        yield shared


@pytest.fixture
def run_graph(pool):
    def run(task: Task, config: RunConfig, model: Any = None, store: RunStore | None = None) -> dict[str, Any]:
        """Without a `store`, the run's task snapshot is kept in memory and nothing is checkpointed."""
        snapshots = (store or RunStore.in_memory()).snapshots
        deps = NodeDeps(runner=TestRunner(pool, test_timeout_s=config.test_timeout_s), snapshots=snapshots,
                        model=model)
        graph = build_graph(deps, store.checkpointer if store else None)
        run_id = uuid.uuid4().hex[:8]
        return graph.invoke(initial_state(run_id, task, config, snapshots),
                            thread_config(run_id) if store else {"recursion_limit": 1000})

    return run
