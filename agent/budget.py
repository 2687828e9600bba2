"""The run's bounds: patch steps, model tokens and wall time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.state import RunConfig


def exhausted(state: Mapping[str, Any], config: RunConfig) -> str | None:
    """The first bound the run has reached, as a reason a user can read, or None."""
    if state.get("iteration", 0) >= config.max_iterations:
        return f"iteration budget reached ({config.max_iterations})"
    if config.uses_model and state.get("tokens_used", 0) >= config.max_tokens:
        return f"token budget reached ({state.get('tokens_used', 0)} of {config.max_tokens})"
    if state.get("elapsed_s", 0.0) >= config.max_time_s:
        return f"time budget reached ({state.get('elapsed_s', 0.0):.1f} of {config.max_time_s:.0f} s)"
    return None
