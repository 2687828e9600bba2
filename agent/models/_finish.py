"""Shared helpers of the backends: finish reasons and stop-string truncation, with one meaning everywhere."""

from __future__ import annotations

from collections.abc import Sequence

from agent.models._protocol import FinishReason


def normalise_finish_reason(reason: str | None) -> FinishReason:
    """Map a backend's reason to ours; anything that is not a length cut or a filter is a normal stop."""
    if reason in ("length", "content_filter"):
        return reason  # type: ignore[return-value]
    return "stop"


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop string (the stop string excluded, as vLLM and OpenAI do)."""
    hits = [i for i in (text.find(s) for s in stop) if i >= 0]
    if not hits:
        return text, False
    return text[: min(hits)], True
