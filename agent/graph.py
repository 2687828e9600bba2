"""The repair loop as a LangGraph StateGraph.

    START -> (generate) -> execute -> trace -> (reason) -> patch -> execute -> ... -> finish -> END

`build_graph` takes the dependencies and any checkpointer, so a CLI, a server or a benchmark compiles
the same graph and can `invoke`, `stream(..., stream_mode="updates")` or resume it (`invoke(None, ...)`).
A run's input is in its state (the config, and the hash of its task, whose snapshot is in the run store):
`open_deps(config, snapshots)` rebuilds the rest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

import sandbox
from agent.completion import LoopModel
from agent.nodes import NodeDeps
from agent.nodes.execute import execute
from agent.nodes.finish import finish
from agent.nodes.generate import generate
from agent.nodes.patch import patch
from agent.nodes.reason import reason
from agent.nodes.trace import trace
from agent.persistence import TaskSnapshots
from agent.routing import (
    generates_first,
    route_after_execute,
    route_after_patch,
    route_after_trace,
    route_start,
)
from agent.state import RepairState, RunConfig
from agent.tasks import Task, TestRunner

Node = Callable[[Mapping[str, Any], NodeDeps], dict[str, Any]]
NODES: dict[str, Node] = {"generate": generate, "execute": execute, "trace": trace, "reason": reason,
                          "patch": patch, "finish": finish}


def build_graph(deps: NodeDeps | None, checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
    builder = StateGraph(RepairState)
    for name, node in NODES.items():
        builder.add_node(name, _timed(name, node, deps))
    builder.add_conditional_edges(START, route_start, ["generate", "execute"])
    builder.add_edge("generate", "execute")
    builder.add_conditional_edges("execute", route_after_execute, ["trace", "finish"])
    builder.add_conditional_edges("trace", route_after_trace, ["reason", "patch"])
    builder.add_edge("reason", "patch")
    builder.add_conditional_edges("patch", route_after_patch, ["execute", "trace", "finish"])
    builder.add_edge("finish", END)
    return builder.compile(checkpointer=checkpointer)


def run_values(checkpointer: BaseCheckpointSaver, run_id: str) -> dict[str, Any]:
    """A run's latest checkpointed state ({} if unknown), without the world its nodes need."""
    return dict(build_graph(None, checkpointer).get_state(thread_config(run_id)).values)


def initial_state(run_id: str, task: Task, config: RunConfig, snapshots: TaskSnapshots) -> RepairState:
    """Stores the task's snapshot (once per content) and names it in the state."""
    return {"run_id": run_id, "task_sha256": snapshots.put(task), "generate_first": generates_first(task),
            "config": config.model_dump(mode="json"), "iteration": 0, "best": None, "candidates": [],
            "status": "running", "stop_reason": ""}


def thread_config(run_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": run_id}, "recursion_limit": 10_000}


@contextlib.contextmanager
def open_deps(config: RunConfig, snapshots: TaskSnapshots, pool: sandbox.Pool | None = None) -> Iterator[NodeDeps]:
    """The sandbox pool and, if the config names one, the model; both released on exit. `snapshots`: the run
    store's, where nodes load the task.

    A server running many runs passes its one shared `pool` (left open), so sandbox processes stay bounded.
    """
    model = load_model_spec(config.model) if config.uses_model else None
    try:
        with contextlib.nullcontext(pool) if pool is not None else sandbox.Pool(workers=config.workers,
                                                                                python=config.python) as used:
            yield NodeDeps(runner=TestRunner(used, test_timeout_s=config.test_timeout_s), snapshots=snapshots,
                           model=model)
    finally:
        if model is not None:
            model.close()


def load_model_spec(spec: str) -> LoopModel:
    """BACKEND:NAME (openai:semcoder_s_1030, transformers:/ckpt); the other settings come from SEMCODER_*."""
    from agent.models import ModelConfig, load_model

    backend, sep, name = spec.partition(":")
    if not sep or backend not in ("openai", "vllm", "transformers"):
        raise ValueError(f"model spec {spec!r} must be 'none' or BACKEND:NAME with BACKEND openai|vllm|transformers")
    return LoopModel(load_model(ModelConfig(backend=backend, model=name)))  # type: ignore[arg-type]


def _timed(name: str, node: Node, deps: NodeDeps | None) -> Callable[[RepairState], dict[str, Any]]:
    """Adds the node's wall time to the run's clock and stamps its history entries."""

    def run(state: RepairState) -> dict[str, Any]:
        assert deps is not None, "this graph was built to read state, not to run"
        start = deps.clock()
        update = node(state, deps)
        seconds = deps.clock() - start
        entries = update.get("history") or [{}]
        stamp = {"node": name, "iteration": update.get("iteration", state.get("iteration", 0)),
                 "seconds": round(seconds, 4)}
        return {**update, "elapsed_s": seconds, "history": [{**entry, **stamp} for entry in entries]}

    run.__name__ = name
    return run
