"""The one seam between the agent and any language model: prompts in, completions out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

FinishReason = Literal["stop", "length", "content_filter"]


class ModelError(RuntimeError):
    """The model infrastructure failed (server down, bad request, missing backend): not a model answer."""


class EndpointError(ModelError):
    """The model cannot serve this run as configured (a missing route, an unknown model name, no chat template):
    found by the checks before a run starts, so the message says what to change."""


class ContextWindowError(EndpointError):
    """A prompt and its completion budget do not fit the model's context window."""


Role = Literal["system", "user", "assistant"]


class ChatMessage(BaseModel):
    """One turn of a chat (OpenAI's message object, text content only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str


class SamplingParams(BaseModel):
    """How to sample; the same meaning in every backend (vLLM's and OpenAI's semantics)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int = Field(1, ge=1, description="Completions to sample for the prompt.")
    temperature: float = Field(0.0, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(512, ge=1, description="Most new tokens per completion.")
    stop: tuple[str, ...] = Field((), description="Strings that end a completion; not included in its text.")
    seed: int | None = Field(
        None, description="Sampling seed, for reproducible samples where the backend allows."
    )
    ignore_eos: bool = Field(
        False,
        description="Keep generating past end-of-sequence (benchmarks: every backend does the same work).",
    )

    @model_validator(mode="after")
    def _stop_strings_not_empty(self) -> SamplingParams:
        if any(s == "" for s in self.stop):
            raise ValueError("stop strings must be non-empty")
        return self


class GenerationRequest(BaseModel):
    """One prompt and how to sample it: raw text (`prompt`, no chat template: SemCoder is prompted with plain text)
    or a chat (`messages`, rendered by the model's own chat template: any instruct model). Exactly one of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    params: SamplingParams = SamplingParams()

    @model_validator(mode="after")
    def _one_prompt(self) -> GenerationRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("a request needs exactly one of prompt (raw text) or messages (a chat)")
        if self.messages is not None and not self.messages:
            raise ValueError("a chat request needs at least one message")
        return self

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def chat(self) -> list[dict[str, str]]:
        """The messages as OpenAI's API and chat templates take them."""
        return [m.model_dump() for m in self.messages or ()]


class Completion(BaseModel):
    text: str
    finish_reason: FinishReason


class Usage(BaseModel):
    """Token counts as the backend reports them (the prompt counted once, completions summed over n)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class GenerationResult(BaseModel):
    completions: list[Completion]
    usage: Usage


@runtime_checkable
class Generator(Protocol):
    """A language model backend. Results come back in request order, one per request, n completions each."""

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]: ...

    async def aclose(self) -> None: ...


def generate_sync(generator: Generator, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
    """Blocking convenience for callers without an event loop (scripts, the training pipeline)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(generator.generate(requests))
    raise ModelError(
        "generate_sync called inside a running event loop: await generator.generate(...) instead"
    )


def total_usage(results: Sequence[GenerationResult]) -> Usage:
    return sum((r.usage for r in results), Usage())
