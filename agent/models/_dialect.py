"""How a model is prompted: SemCoder's raw text prompts, or chat messages for any instruct model."""

from __future__ import annotations

from typing import Literal

Dialect = Literal["auto", "semcoder", "chat"]
Resolved = Literal["semcoder", "chat"]

DIALECT_HELP = (
    "How the model is prompted: semcoder: SemCoder's raw prompts on /v1/completions (its checkpoints were trained "
    "on them, byte for byte); chat: system + user messages on /v1/chat/completions, rendered by the model's own chat "
    "template (any instruct model: Qwen2.5-Coder-Instruct, Llama, a model in Ollama); auto: semcoder for a model "
    "whose name or path contains 'semcoder', chat for any other."
)


def resolve_dialect(dialect: Dialect, model: str) -> Resolved:
    """`auto` by the model's name or path (a spec BACKEND:NAME is fine as well)."""
    if dialect != "auto":
        return dialect
    return "semcoder" if "semcoder" in model.lower() else "chat"


def other_dialect(dialect: Resolved) -> Resolved:
    return "chat" if dialect == "semcoder" else "semcoder"


def route_of(dialect: Resolved) -> str:
    """The OpenAI-compatible route a dialect's requests go to."""
    return "/v1/chat/completions" if dialect == "chat" else "/v1/completions"
