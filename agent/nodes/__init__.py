"""The graph's nodes, one per file. Each takes the state and its dependencies and returns an update."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.completion import Model
from agent.persistence import TaskSnapshots
from agent.tasks import TestRunner
from sandbox.tracer import Trace, trace_call


class Tracer(Protocol):
    """Traces a call over code, in the run's own sandbox."""

    def trace(self, code: str, call: str) -> Trace: ...


class PoolTracer:
    """Traces on the pool (and so the backend: Docker under Docker) that runs the run's tests."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def trace(self, code: str, call: str) -> Trace:
        return trace_call(code, call, runner=self.pool)


@dataclass
class NodeDeps:
    """What nodes need from the world; rebuilt from the run's config on resume, never checkpointed.

    The tracer defaults to the test runner's own pool: untrusted code never runs by another path. Nodes load
    the run's task from `snapshots` (agent/persistence.load_task): the state holds only its hash.
    """

    runner: TestRunner
    snapshots: TaskSnapshots
    model: Model | None = None
    clock: Callable[[], float] = field(default=time.monotonic)
    tracer: Tracer | None = None

    def __post_init__(self) -> None:
        if self.tracer is None:
            self.tracer = PoolTracer(self.runner.pool)

    @property
    def isolation(self) -> dict[str, Any]:
        report = getattr(self.runner.pool, "isolation_report", None)
        return report() if report is not None else {}


def candidate_key(files: dict[str, str]) -> str:
    """Identifies a version of the editable files, so no patch is tested twice."""
    return hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest()
