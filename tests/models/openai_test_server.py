"""A real OpenAI-compatible server on loopback, backed by any Generator (the transformers backend on a tiny
checkpoint, or a scripted model whose answers the test chooses).

It speaks the parts of the API that the `openai` backend uses (`/v1/models`, `/v1/completions` with a prompt
or a list of prompts, `/v1/chat/completions` with messages, n, stop, seed, SSE streaming with usage) and answers
errors as OpenAI-style JSON. For tests it counts attempts and in-flight requests, and can fail or stall on demand.

Like vLLM, with a `tokenizer` it renders each chat by the tokenizer's own chat template (apply_chat_template with
the generation prompt; a tokenizer without one is refused with vLLM's 400) and records the messages and that
rendering (`state.chats`); the generator gets the messages (the transformers backend renders them with the same
template). With `max_model_len` it reports the window in /v1/models as vLLM does and refuses a prompt whose tokens
plus max_tokens exceed it with vLLM's 400. `routes` leaves out a route (404), as a completions-only or chat-only
server would.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ValidationError

from agent.models import (
    ChatMessage,
    GenerationRequest,
    GenerationResult,
    Generator,
    SamplingParams,
    total_usage,
)

ROUTES = frozenset({"completions", "chat"})
NO_TEMPLATE = (
    "As of transformers v4.44, default chat template is no longer allowed, so you must provide a chat template if "
    "the tokenizer does not define one."
)  # vLLM's words


class _Sampling(BaseModel):
    """What both routes take besides their prompt or messages."""

    model: str
    n: int = 1
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    ignore_eos: bool = False  # vLLM's extension


class CompletionBody(_Sampling):
    prompt: str | list[str]


class ChatBody(_Sampling):
    messages: list[ChatMessage]


class ChatRecord(BaseModel):
    """A chat request as the server received it, and its rendering by the tokenizer's chat template."""

    messages: list[ChatMessage]
    rendered: str


class ServerState:
    def __init__(self) -> None:
        self.chats: list[ChatRecord] = []
        self.prompts: list[str] = []  # raw prompts received on /v1/completions
        self.attempts = 0
        self.fail_next = 0  # answer this many requests with 503 first
        self.delay_s = 0.0  # stall each request this long first
        self.in_flight = 0
        self.peak_in_flight = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


def error_response(
    status: int, message: str, kind: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def build_app(generator: Generator, model_name: str, state: ServerState, *, tokenizer: Any = None,
              max_model_len: int | None = None, routes: frozenset[str] = ROUTES) -> FastAPI:
    app = FastAPI()

    def too_long(prompt_tokens: int, max_tokens: int) -> JSONResponse | None:
        if max_model_len is None or prompt_tokens + max_tokens <= max_model_len:
            return None
        return error_response(
            400, f"This model's maximum context length is {max_model_len} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, {max_tokens} in the completion). "
            "Please reduce the length of the messages or completion.", "BadRequestError")

    def count(text: str, special: bool) -> int:
        return len(tokenizer(text, add_special_tokens=special)["input_ids"]) if tokenizer is not None else 0

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, str(error.errors()), "invalid_request_error")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {"id": model_name, "object": "model", "created": 0, "owned_by": "semcoder-tests"}
        if max_model_len is not None:
            card["max_model_len"] = max_model_len  # as vLLM reports it
        return {"object": "list", "data": [card]}

    async def counted(answer: Any) -> JSONResponse | StreamingResponse:
        state.attempts += 1
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            await asyncio.sleep(state.delay_s)
            if state.fail_next > 0:
                state.fail_next -= 1
                # retry-after-ms keeps the client's backoff short in tests.
                return error_response(503, "injected failure", "server_error", {"retry-after-ms": "10"})
            return await answer()
        finally:
            state.in_flight -= 1

    async def _complete(body: CompletionBody) -> JSONResponse | StreamingResponse:
        if body.model != model_name:
            return error_response(404, f"The model `{body.model}` does not exist.", "NotFoundError")
        try:
            requests = _requests(body)
        except ValidationError as error:
            return error_response(400, str(error), "invalid_request_error")
        counts = [count(request.prompt or "", True) for request in requests]
        for tokens in counts:
            refused = too_long(tokens, body.max_tokens)
            if refused is not None:
                return refused
        state.prompts += [r.prompt or "" for r in requests]
        results = _counted_prompts(await generator.generate(requests), counts if tokenizer is not None else None)
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(_sse(results, model_name, include_usage), media_type="text/event-stream")
        return JSONResponse(_completion_object(results, model_name))

    async def _chat(body: ChatBody) -> JSONResponse | StreamingResponse:
        if body.model != model_name:
            return error_response(404, f"The model `{body.model}` does not exist.", "NotFoundError")
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            return error_response(400, NO_TEMPLATE, "BadRequestError")
        messages = [m.model_dump() for m in body.messages]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        tokens = count(rendered, False)  # as vLLM tokenizes a rendered chat: the template placed the special tokens
        refused = too_long(tokens, body.max_tokens)
        if refused is not None:
            return refused
        try:
            request = GenerationRequest(messages=tuple(body.messages), params=_params(body))
        except ValidationError as error:
            return error_response(400, str(error), "invalid_request_error")
        state.chats.append(ChatRecord(messages=body.messages, rendered=rendered))
        results = _counted_prompts(await generator.generate([request]), [tokens])
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(_chat_sse(results, model_name, include_usage), media_type="text/event-stream")
        return JSONResponse(_chat_object(results, model_name))

    if "completions" in routes:

        @app.post("/v1/completions", response_model=None)
        async def completions(body: CompletionBody) -> JSONResponse | StreamingResponse:
            return await counted(lambda: _complete(body))

    if "chat" in routes:

        @app.post("/v1/chat/completions", response_model=None)
        async def chat_completions(body: ChatBody) -> JSONResponse | StreamingResponse:
            return await counted(lambda: _chat(body))

    return app


def _counted_prompts(results: list[GenerationResult], counts: list[int] | None) -> list[GenerationResult]:
    """Usage with the prompt tokens the server's tokenizer counted (a scripted model cannot count them)."""
    if counts is None:
        return results
    return [r.model_copy(update={"usage": r.usage.model_copy(update={"prompt_tokens": n})})
            for r, n in zip(results, counts, strict=True)]


def _params(body: CompletionBody | ChatBody) -> SamplingParams:
    stop = [body.stop] if isinstance(body.stop, str) else body.stop or []
    return SamplingParams(
        n=body.n,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        stop=tuple(stop),
        seed=body.seed,
        ignore_eos=body.ignore_eos,
    )


def _requests(body: CompletionBody) -> list[GenerationRequest]:
    params = _params(body)
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    return [GenerationRequest(prompt=p, params=params) for p in prompts]


def _choices(results: list[GenerationResult]) -> Iterator[tuple[int, str, str]]:
    """(index, text, finish_reason); indices run over prompts then samples, as vLLM numbers them."""
    index = 0
    for result in results:
        for completion in result.completions:
            yield index, completion.text, completion.finish_reason
            index += 1


def _usage_object(results: list[GenerationResult]) -> dict[str, int]:
    usage = total_usage(results)
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def _envelope(model_name: str) -> dict[str, Any]:
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model_name,
    }


def _completion_object(results: list[GenerationResult], model_name: str) -> dict[str, Any]:
    choices = [
        {"index": i, "text": text, "logprobs": None, "finish_reason": reason}
        for i, text, reason in _choices(results)
    ]
    return {**_envelope(model_name), "choices": choices, "usage": _usage_object(results)}


def _sse(results: list[GenerationResult], model_name: str, include_usage: bool) -> Iterator[str]:
    """Each choice's text in several small chunks, the last one with its finish_reason, then usage."""
    envelope = _envelope(model_name)
    for index, text, reason in _choices(results):
        pieces = [text[i : i + 5] for i in range(0, len(text), 5)] or [""]
        for number, piece in enumerate(pieces, 1):
            finish = reason if number == len(pieces) else None
            choice = {"index": index, "text": piece, "logprobs": None, "finish_reason": finish}
            yield f"data: {json.dumps({**envelope, 'choices': [choice]})}\n\n"
    if include_usage:
        yield f"data: {json.dumps({**envelope, 'choices': [], 'usage': _usage_object(results)})}\n\n"
    yield "data: [DONE]\n\n"


def _chat_object(results: list[GenerationResult], model_name: str) -> dict[str, Any]:
    choices = [
        {"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": reason}
        for i, text, reason in _choices(results)
    ]
    envelope = {**_envelope(model_name), "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion"}
    return {**envelope, "choices": choices, "usage": _usage_object(results)}


def _chat_sse(results: list[GenerationResult], model_name: str, include_usage: bool) -> Iterator[str]:
    """Each choice: a role delta, its content in small chunks, the last with its finish_reason; then usage."""
    envelope = {**_envelope(model_name), "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk"}
    for index, text, reason in _choices(results):
        first = {"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        yield f"data: {json.dumps({**envelope, 'choices': [first]})}\n\n"
        pieces = [text[i : i + 5] for i in range(0, len(text), 5)] or [""]
        for number, piece in enumerate(pieces, 1):
            finish = reason if number == len(pieces) else None
            choice = {"index": index, "delta": {"content": piece}, "finish_reason": finish}
            yield f"data: {json.dumps({**envelope, 'choices': [choice]})}\n\n"
    if include_usage:
        yield f"data: {json.dumps({**envelope, 'choices': [], 'usage': _usage_object(results)})}\n\n"
    yield "data: [DONE]\n\n"


class OpenAITestServer:
    """uvicorn in a background thread on a free loopback port (build_app's options: a chat template's tokenizer,
    a context window, the routes served)."""

    def __init__(self, generator: Generator, model_name: str, *, tokenizer: Any = None,
                 max_model_len: int | None = None, routes: frozenset[str] = ROUTES):
        self.model_name = model_name
        self.state = ServerState()
        app = build_app(generator, model_name, self.state, tokenizer=tokenizer, max_model_len=max_model_len,
                        routes=routes)
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> OpenAITestServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test OpenAI server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
