"""Any OpenAI-compatible endpoint (a `vllm serve` server, Ollama, hosted APIs) via the official client.

Raw prompts go to /v1/completions, chats (`GenerationRequest.messages`) to /v1/chat/completions, with the same
sampling, usage accounting, streaming and retries. Several servers of the same model may be given: each request
goes to the least-loaded one and, where that server cannot answer, to another.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
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
from agent.models._urls import api_base, split_urls

__all__ = ["OpenAIGenerator", "ServerLoad", "api_base", "is_context_error", "status_error"]


class ServerUnavailable(ModelError):
    """A server could not answer a request (connection error, timeout, 408, 409, 429, 5xx) after its retries;
    another server may."""


@dataclass(eq=False)
class ServerLoad:
    """One server as the generator sees it: requests in flight and sent, failures, and whether it is skipped."""

    url: str
    in_flight: int = 0
    sent: int = 0
    failed: int = 0
    down_until: float = 0.0  # time.monotonic(); a server that failed is skipped until then

    def down(self, now: float | None = None) -> bool:
        return self.down_until > (time.monotonic() if now is None else now)


class OpenAIGenerator:
    """Sends every request at once (bounded by `concurrency`) so that the servers can batch them.

    Retries are the client's own: connection errors, timeouts, 408, 409, 429 and 5xx, with exponential
    backoff; other 4xx fail at once. Each request is one call with `n` choices: a completions call for a raw
    prompt, a chat completions call for messages.

    `base_url` may name several servers of the same model (a list, or URLs separated by commas): each request
    goes to the one with the fewest requests in flight (ties in turn), `concurrency` bounds them all together,
    and a request whose server fails after its retries is tried on the next server; a server that failed is
    skipped for `down_for_s` seconds while another is up. A request is sent unchanged (its seed included)
    wherever it goes, and the results come back in request order.
    """

    def __init__(
        self,
        model: str,
        base_url: str | Sequence[str],
        *,
        api_key: str = "EMPTY",
        timeout_s: float = 600.0,
        max_retries: int = 4,
        concurrency: int = 256,
        stream: bool = False,
        down_for_s: float = 30.0,
    ):
        self.model = model
        self.base_urls = split_urls(base_url)
        if not self.base_urls:
            raise ModelError("no model server URL given (one URL, or several separated by commas)")
        self.base_url = ", ".join(self.base_urls)  # one server: its API base; several: all, for messages
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.stream = stream
        self.down_for_s = down_for_s
        self._servers = [ServerLoad(url) for url in self.base_urls]
        self._turn = 0  # where the next tie is broken
        self._lock = threading.Lock()  # a generator may be shared by several event loops' threads
        self._clients: dict[str, openai.AsyncOpenAI] = {}
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def at(self, url: str) -> OpenAIGenerator:
        """The same settings, one server."""
        return OpenAIGenerator(self.model, url, api_key=self.api_key, timeout_s=self.timeout_s,
                               max_retries=self.max_retries, concurrency=self.concurrency, stream=self.stream,
                               down_for_s=self.down_for_s)

    def servers(self) -> list[ServerLoad]:
        """A snapshot of each server's load, in the order given."""
        with self._lock:
            return [ServerLoad(s.url, s.in_flight, s.sent, s.failed, s.down_until) for s in self._servers]

    def client(self, url: str | None = None) -> openai.AsyncOpenAI:
        """The client of the running event loop for `url` (default: the first server): pooled connections cannot
        cross loops (generate_sync)."""
        loop = asyncio.get_running_loop()
        if self._client_loop is not loop:
            self._clients = {}
            self._client_loop = loop
        url = url or self.base_urls[0]
        if url not in self._clients:
            self._clients[url] = openai.AsyncOpenAI(
                base_url=url,
                api_key=self.api_key,
                timeout=self.timeout_s,
                max_retries=self.max_retries,
            )
        return self._clients[url]

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        semaphore = asyncio.Semaphore(self.concurrency)

        async def bounded(request: GenerationRequest) -> GenerationResult:
            async with semaphore:
                return await self._balanced(request)

        # A TaskGroup cancels the other requests as soon as one fails for good; callers get that failure.
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(bounded(r)) for r in requests]
        except ExceptionGroup as failures:
            raise failures.exceptions[0] from None
        return [t.result() for t in tasks]

    async def aclose(self) -> None:
        if self._client_loop is asyncio.get_running_loop():
            for client in self._clients.values():
                await client.close()
        self._clients = {}

    async def _balanced(self, request: GenerationRequest) -> GenerationResult:
        """The request on the least-loaded server; on another where that one cannot answer, until none is left."""
        failures: dict[str, ModelError] = {}
        while (server := self._pick(failures)) is not None:
            try:
                result = await self._complete(self.client(server.url), server.url, request)
            except ServerUnavailable as error:
                failures[server.url] = error
                self._release(server, failed=True)
                continue
            except BaseException:
                self._release(server, failed=False)
                raise
            self._release(server, failed=False, answered=True)
            return result
        if len(failures) == 1:
            raise next(iter(failures.values()))  # one server: its own error, as it always was
        raise ModelError(f"none of the {len(failures)} model servers could answer: "
                         + "; ".join(str(error) for error in failures.values()))

    def _pick(self, tried: dict[str, ModelError]) -> ServerLoad | None:
        """Of the servers not yet tried for this request, the up ones first: the fewest in flight, ties in turn."""
        with self._lock:
            now = time.monotonic()
            left = [s for s in self._servers if s.url not in tried]
            if not left:
                return None
            up = [s for s in left if not s.down(now)] or left
            fewest = min(s.in_flight for s in up)
            count = len(self._servers)
            for step in range(count):
                index = (self._turn + step) % count
                server = self._servers[index]
                if server.in_flight == fewest and any(server is u for u in up):
                    break
            self._turn = (index + 1) % count
            server.in_flight += 1
            server.sent += 1
            return server

    def _release(self, server: ServerLoad, *, failed: bool, answered: bool = False) -> None:
        with self._lock:
            server.in_flight -= 1
            if failed:
                server.failed += 1
                server.down_until = time.monotonic() + self.down_for_s
            elif answered:
                server.down_until = 0.0  # it answers again

    async def _complete(self, client: openai.AsyncOpenAI, url: str, request: GenerationRequest) -> GenerationResult:
        try:
            if self.stream:
                return await self._complete_streamed(client, url, request)
            if request.is_chat:
                chat = await client.chat.completions.create(**self._arguments(request))
                return self._chat_result(url, chat)
            response = await client.completions.create(**self._arguments(request))
        except openai.APIStatusError as error:
            refused = status_error(url, error, request.is_chat)
            if error.status_code in _SERVER_SIDE or error.status_code >= 500:
                raise ServerUnavailable(str(refused)) from error
            raise refused from error
        except openai.APIConnectionError as error:  # includes timeouts
            raise ServerUnavailable(
                f"cannot reach {url} ({error.__class__.__name__}, {self.max_retries} retries): {error}"
            ) from error
        except httpx.TransportError as error:  # the connection lost in the middle of a stream
            raise ServerUnavailable(f"lost the connection to {url} ({error.__class__.__name__}): {error}") from error
        except openai.APIError as error:  # e.g. an error event inside a stream
            raise ModelError(f"{url} failed: {error}") from error
        choices = sorted(response.choices, key=lambda c: c.index)
        completions = [
            Completion(text=c.text, finish_reason=normalise_finish_reason(c.finish_reason)) for c in choices
        ]
        return GenerationResult(completions=completions, usage=self._usage(url, response.usage))

    async def _complete_streamed(
        self, client: openai.AsyncOpenAI, url: str, request: GenerationRequest
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
        return GenerationResult(completions=completions, usage=self._usage(url, usage))

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

    def _chat_result(self, url: str, response: Any) -> GenerationResult:
        choices = sorted(response.choices, key=lambda c: c.index)
        completions = [
            Completion(text=c.message.content or "", finish_reason=normalise_finish_reason(c.finish_reason))
            for c in choices
        ]
        return GenerationResult(completions=completions, usage=self._usage(url, response.usage))

    def _usage(self, url: str, usage: Any) -> Usage:
        if usage is None:
            raise ModelError(f"{url} reported no token usage; the protocol needs it")
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


_SERVER_SIDE = (408, 409, 429)  # and 5xx: the server, not the request; another server may answer


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
