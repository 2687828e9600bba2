"""Any OpenAI-compatible endpoint (a `vllm serve` server, Ollama, hosted APIs) via the official client.

Raw prompts go to /v1/completions, chats (`GenerationRequest.messages`) to /v1/chat/completions, with the same
sampling, usage accounting, streaming and retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import openai

from agent.models._finish import normalise_finish_reason
from agent.models._protocol import (
    Completion,
    ContextWindowError,
    EndpointError,
    GenerationRequest,
    GenerationResult,
    ModelError,
    Usage,
)


def api_base(url: str) -> str:
    """'http://host:8000' and 'http://host:8000/v1/' both mean the API at 'http://host:8000/v1'."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


class OpenAIGenerator:
    """Sends every request at once (bounded by `concurrency`) so that the server can batch them.

    Retries are the client's own: connection errors, timeouts, 408, 409, 429 and 5xx, with exponential
    backoff; other 4xx fail at once. Each request is one call with `n` choices: a completions call for a raw
    prompt, a chat completions call for messages.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str = "EMPTY",
        timeout_s: float = 600.0,
        max_retries: int = 4,
        concurrency: int = 256,
        stream: bool = False,
    ):
        self.model = model
        self.base_url = api_base(base_url)
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.stream = stream
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def client(self) -> openai.AsyncOpenAI:
        """The client of the running event loop: its pooled connections cannot cross loops (generate_sync)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self.api_key,
                timeout=self.timeout_s,
                max_retries=self.max_retries,
            )
            self._client_loop = loop
        return self._client

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        client = self.client()
        semaphore = asyncio.Semaphore(self.concurrency)

        async def bounded(request: GenerationRequest) -> GenerationResult:
            async with semaphore:
                return await self._complete(client, request)

        # A TaskGroup cancels the other requests as soon as one fails for good; callers get that failure.
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(bounded(r)) for r in requests]
        except ExceptionGroup as failures:
            raise failures.exceptions[0] from None
        return [t.result() for t in tasks]

    async def aclose(self) -> None:
        if self._client is not None and self._client_loop is asyncio.get_running_loop():
            await self._client.close()
        self._client = None

    async def _complete(self, client: openai.AsyncOpenAI, request: GenerationRequest) -> GenerationResult:
        try:
            if self.stream:
                return await self._complete_streamed(client, request)
            if request.is_chat:
                chat = await client.chat.completions.create(**self._arguments(request))
                return self._chat_result(chat)
            response = await client.completions.create(**self._arguments(request))
        except openai.APIStatusError as error:
            raise status_error(self.base_url, error, request.is_chat) from error
        except openai.APIConnectionError as error:  # includes timeouts
            raise ModelError(
                f"cannot reach {self.base_url} ({error.__class__.__name__}, {self.max_retries} retries): {error}"
            ) from error
        except openai.APIError as error:  # e.g. an error event inside a stream
            raise ModelError(f"{self.base_url} failed: {error}") from error
        choices = sorted(response.choices, key=lambda c: c.index)
        completions = [
            Completion(text=c.text, finish_reason=normalise_finish_reason(c.finish_reason)) for c in choices
        ]
        return GenerationResult(completions=completions, usage=self._usage(response.usage))

    async def _complete_streamed(
        self, client: openai.AsyncOpenAI, request: GenerationRequest
    ) -> GenerationResult:
        n = request.params.n
        texts = [""] * n
        reasons: list[str | None] = [None] * n
        usage = None
        route = client.chat.completions if request.is_chat else client.completions
        stream = await route.create(
            **self._arguments(request), stream=True, stream_options={"include_usage": True}
        )
        async for chunk in stream:
            for choice in chunk.choices:
                piece = (choice.delta.content or "") if request.is_chat else choice.text
                texts[choice.index] += piece
                reasons[choice.index] = choice.finish_reason or reasons[choice.index]
            usage = chunk.usage or usage
        completions = [
            Completion(text=t, finish_reason=normalise_finish_reason(r))
            for t, r in zip(texts, reasons, strict=True)
        ]
        return GenerationResult(completions=completions, usage=self._usage(usage))

    def _arguments(self, request: GenerationRequest) -> dict[str, Any]:
        params = request.params
        arguments: dict[str, Any] = {
            "model": self.model,
            **({"messages": request.chat()} if request.is_chat else {"prompt": request.prompt}),
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.stop:
            arguments["stop"] = list(params.stop)
        if params.seed is not None:
            arguments["seed"] = params.seed
        if params.ignore_eos:
            arguments["extra_body"] = {"ignore_eos": True}  # a vLLM extension of the API
        return arguments

    def _chat_result(self, response: Any) -> GenerationResult:
        choices = sorted(response.choices, key=lambda c: c.index)
        completions = [
            Completion(text=c.message.content or "", finish_reason=normalise_finish_reason(c.finish_reason))
            for c in choices
        ]
        return GenerationResult(completions=completions, usage=self._usage(response.usage))

    def _usage(self, usage: Any) -> Usage:
        if usage is None:
            raise ModelError(f"{self.base_url} reported no token usage; the protocol needs it")
        return Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)


def status_error(base_url: str, error: openai.APIStatusError, chat: bool) -> ModelError:
    """The ModelError for a refused request; a prompt past the context window gets its own kind and advice."""
    message = _message(error)
    if error.status_code == 400 and is_context_error(message):
        return ContextWindowError(
            f"{base_url} refused a prompt that does not fit the model's context window: {message} (show less context "
            f"or ask for fewer new tokens: --max-new-tokens / --max-tokens)")
    if error.status_code in (404, 405) and "model" not in message.lower():
        route = "/v1/chat/completions" if chat else "/v1/completions"
        other = "semcoder" if chat else "chat"
        return EndpointError(f"{base_url} has no {route} route ({error.status_code}: {message}); try --dialect {other}")
    return ModelError(f"{base_url} answered {error.status_code}: {message}")


_CONTEXT_PHRASES = ("maximum context length", "context length", "context window", "too long", "max_model_len")


def is_context_error(message: str) -> bool:
    lowered = message.lower()
    return any(phrase in lowered for phrase in _CONTEXT_PHRASES)


def _message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and "message" in inner:
            return str(inner["message"])
        if isinstance(body.get("detail"), str):  # a plain FastAPI/Starlette error ({"detail": "Not Found"})
            return body["detail"]
    return error.message
