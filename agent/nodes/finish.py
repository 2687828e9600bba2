"""finish: the run's outcome, from the best attempt and why the loop stopped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.budget import exhausted
from agent.state import Attempt, RunConfig


def finish(state: Mapping[str, Any], deps: object = None) -> dict[str, Any]:
    if state.get("status") == "error":
        return {}
    best = Attempt(**state["best"]) if state.get("best") else None
    if best is not None and best.report.outcomes and not best.report.failing and best.confirmation:
        return {"status": "fixed", "stop_reason": f"all {best.total} tests pass (confirmed: {best.confirmation})"}
    reason = exhausted(state, RunConfig(**state["config"])) or "no untested patch left to try"
    return {"status": "not_fixed", "stop_reason": reason}
