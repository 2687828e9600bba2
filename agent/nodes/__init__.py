"""The graph's nodes, one per file. Each takes the state and its dependencies and returns an update."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.completion import Model
from agent.tasks import TestRunner


@dataclass
class NodeDeps:
    """What nodes need from the world; rebuilt from the run's config on resume, never checkpointed."""

    runner: TestRunner
    model: Model | None = None
    clock: Callable[[], float] = field(default=time.monotonic)


def candidate_key(files: dict[str, str]) -> str:
    """Identifies a version of the editable files, so no patch is tested twice."""
    return hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest()
