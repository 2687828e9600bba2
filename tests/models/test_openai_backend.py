"""The openai backend over a real socket, against an OpenAI-compatible server backed by the tiny checkpoint."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from conftest import SERVED_NAME
from openai_test_server import OpenAITestServer

from agent.models import (
    GenerationRequest,
    ModelConfig,
    ModelError,
    OpenAIGenerator,
    SamplingParams,
    TransformersGenerator,
    api_base,
    generate_sync,
    load_model,
)

PROMPT = "def add(a, b):\n"


def client(server: OpenAITestServer, **options: object) -> OpenAIGenerator:
    return OpenAIGenerator(SERVED_NAME, server.url, **options)  # type: ignore[arg-type]


def request(prompt: str = PROMPT, **params: object) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, params=SamplingParams(**params))


def test_api_base_adds_v1_once() -> None:
    assert api_base("http://h:8000") == "http://h:8000/v1"
    assert api_base("http://h:8000/v1/") == "http://h:8000/v1"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_same_completions_as_the_backend_itself(
    openai_server: OpenAITestServer, transformers_generator: TransformersGenerator, stream: bool
) -> None:
    work = [
        request(n=2, max_tokens=10, ignore_eos=True),
        request("import os\n", max_tokens=6, ignore_eos=True),
    ]
    over_http = generate_sync(client(openai_server, stream=stream), work)
    direct = generate_sync(transformers_generator, work)
    assert over_http == direct
    assert [len(r.completions) for r in over_http] == [2, 1]
    assert over_http[0].usage.completion_tokens == 20


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_sampling_n_seed_and_stop_travel(
    openai_server: OpenAITestServer, transformers_generator: TransformersGenerator, stream: bool
) -> None:
    sampled = request(n=3, temperature=1.0, top_p=0.9, max_tokens=8, seed=11, ignore_eos=True)
    (free,) = generate_sync(transformers_generator, [sampled])
    stop = free.completions[1].text[2:4]
    stopped = sampled.model_copy(update={"params": sampled.params.model_copy(update={"stop": (stop,)})})
    (over_http,) = generate_sync(client(openai_server, stream=stream), [stopped])
    (direct,) = generate_sync(transformers_generator, [stopped])
    assert over_http == direct
    assert over_http.completions[1].finish_reason == "stop"
    assert stop not in over_http.completions[1].text


def test_requests_are_sent_concurrently(openai_server: OpenAITestServer) -> None:
    results = generate_sync(
        client(openai_server, concurrency=8), [request(f"x = {i}\n", max_tokens=4) for i in range(8)]
    )
    assert len(results) == 8
    assert openai_server.state.attempts == 8
    assert openai_server.state.peak_in_flight > 1


def test_concurrency_is_bounded(openai_server: OpenAITestServer) -> None:
    generate_sync(
        client(openai_server, concurrency=1), [request(f"x = {i}\n", max_tokens=2) for i in range(4)]
    )
    assert openai_server.state.peak_in_flight == 1


def test_transient_errors_are_retried(openai_server: OpenAITestServer) -> None:
    openai_server.state.fail_next = 2
    (result,) = generate_sync(client(openai_server, max_retries=3), [request(max_tokens=3)])
    assert len(result.completions) == 1
    assert openai_server.state.attempts == 3


def test_retries_run_out(openai_server: OpenAITestServer) -> None:
    openai_server.state.fail_next = 5
    with pytest.raises(ModelError, match="answered 503: injected failure"):
        generate_sync(client(openai_server, max_retries=1), [request(max_tokens=3)])
    assert openai_server.state.attempts == 2


def test_client_errors_are_not_retried(openai_server: OpenAITestServer) -> None:
    wrong_model = OpenAIGenerator("no-such-model", openai_server.url, max_retries=3)
    with pytest.raises(ModelError, match="answered 404: The model `no-such-model` does not exist"):
        generate_sync(wrong_model, [request(max_tokens=3)])
    assert openai_server.state.attempts == 1


def test_server_rejects_a_bad_request_as_openai_json(openai_server: OpenAITestServer) -> None:
    response = httpx.post(
        f"{openai_server.url}/v1/completions", json={"model": SERVED_NAME, "prompt": "x", "max_tokens": 0}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_timeouts_are_errors(openai_server: OpenAITestServer) -> None:
    openai_server.state.delay_s = 2.0
    with pytest.raises(ModelError, match="APITimeoutError"):
        generate_sync(client(openai_server, timeout_s=0.3, max_retries=0), [request(max_tokens=2)])


def test_connection_refused_is_retried_then_an_error() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    nobody = OpenAIGenerator(SERVED_NAME, f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(ModelError, match=r"cannot reach .*APIConnectionError, 1 retries"):
        generate_sync(nobody, [request(max_tokens=2)])


def test_one_generator_across_event_loops(openai_server: OpenAITestServer) -> None:
    generator = client(openai_server)
    for _ in range(2):  # each generate_sync runs its own loop; the pooled client must not leak across
        (result,) = generate_sync(generator, [request(max_tokens=2)])
        assert result.completions

    async def closed() -> None:
        await generator.generate([request(max_tokens=2)])
        await generator.aclose()

    asyncio.run(closed())


def test_configured_from_environment(
    openai_server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMCODER_MODEL_URL", openai_server.url)
    monkeypatch.setenv("SEMCODER_MODEL", SERVED_NAME)
    monkeypatch.setenv("SEMCODER_CONCURRENCY", "3")
    config = ModelConfig()
    assert (config.backend, config.model_url, config.model, config.concurrency) == (
        "openai",
        openai_server.url,
        SERVED_NAME,
        3,
    )
    generator = load_model(config)
    assert isinstance(generator, OpenAIGenerator)
    (result,) = generate_sync(generator, [request(max_tokens=2, ignore_eos=True)])
    assert result.usage.completion_tokens == 2
