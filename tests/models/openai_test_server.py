"""A real OpenAI-compatible completions server on loopback, backed by the transformers backend.

It speaks the parts of the API that the `openai` backend uses (`/v1/models`, `/v1/completions` with a prompt
or a list of prompts, n, stop, seed, SSE streaming with usage) and answers errors as OpenAI-style JSON.
For tests it counts attempts and in-flight requests, and can fail or stall on demand.
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

from agent.models import GenerationRequest, GenerationResult, Generator, SamplingParams, total_usage


class CompletionBody(BaseModel):
    model: str
    prompt: str | list[str]
    n: int = 1
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    ignore_eos: bool = False  # vLLM's extension


class ServerState:
    def __init__(self) -> None:
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


def build_app(generator: Generator, model_name: str, state: ServerState) -> FastAPI:
    app = FastAPI()

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(400, str(error.errors()), "invalid_request_error")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {"id": model_name, "object": "model", "created": 0, "owned_by": "semcoder-tests"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionBody) -> JSONResponse | StreamingResponse:
        state.attempts += 1
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        try:
            return await _complete(body)
        finally:
            state.in_flight -= 1

    async def _complete(body: CompletionBody) -> JSONResponse | StreamingResponse:
        await asyncio.sleep(state.delay_s)
        if state.fail_next > 0:
            state.fail_next -= 1
            # retry-after-ms keeps the client's backoff short in tests.
            return error_response(503, "injected failure", "server_error", {"retry-after-ms": "10"})
        if body.model != model_name:
            return error_response(404, f"The model `{body.model}` does not exist.", "NotFoundError")
        try:
            requests = _requests(body)
        except ValidationError as error:
            return error_response(400, str(error), "invalid_request_error")
        results = await generator.generate(requests)
        if body.stream:
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            return StreamingResponse(_sse(results, model_name, include_usage), media_type="text/event-stream")
        return JSONResponse(_completion_object(results, model_name))

    return app


def _requests(body: CompletionBody) -> list[GenerationRequest]:
    stop = [body.stop] if isinstance(body.stop, str) else body.stop or []
    params = SamplingParams(
        n=body.n,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        stop=tuple(stop),
        seed=body.seed,
        ignore_eos=body.ignore_eos,
    )
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


class OpenAITestServer:
    """uvicorn in a background thread on a free loopback port."""

    def __init__(self, generator: Generator, model_name: str):
        self.model_name = model_name
        self.state = ServerState()
        self._server = uvicorn.Server(
            uvicorn.Config(build_app(generator, model_name, self.state), log_level="warning")
        )
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
