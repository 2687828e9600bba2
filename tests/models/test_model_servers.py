"""Several servers of one model (SEMCODER_MODEL_URL / --model as a list): requests spread over them, a server that
fails is left for another, results as one server's, and the endpoint check refuses servers that disagree.

Real HTTP servers on loopback; no assertion depends on timing (the in-flight bounds are upper bounds, and the
round-robin counts are taken with one request in flight at a time)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator, Sequence

import pytest
from click.testing import CliRunner
from conftest import SERVED_NAME
from openai_test_server import OpenAITestServer
from pydantic import ValidationError

from agent.model_cli import model_group
from agent.models import (
    Completion,
    EndpointError,
    GenerationRequest,
    GenerationResult,
    ModelConfig,
    ModelError,
    OpenAIGenerator,
    SamplingParams,
    TransformersGenerator,
    Usage,
    check_endpoint,
    generate_sync,
    load_model,
    served_models,
    split_urls,
)
from evals.model_run import ModelRunConfig
from training.data.teacher import TeacherConfig

MODEL = "scripted"


class Scripted:
    """A model whose answer is a function of the request alone (prompt, n, seed, temperature), so that any server
    answers alike; `hook` runs on each request, `in_flight` (shared by servers) counts requests being answered."""

    def __init__(self, hook: Callable[[], None] | None = None, in_flight: list[int] | None = None) -> None:
        self.hook = hook
        self.in_flight = in_flight if in_flight is not None else [0, 0]  # [now, peak]
        self.lock = threading.Lock()

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if self.hook is not None:
            self.hook()
        with self.lock:
            self.in_flight[0] += 1
            self.in_flight[1] = max(self.in_flight)
        try:
            await asyncio.sleep(0.01)  # room for others to overlap (the bounds asserted are upper bounds)
            return [answer(r) for r in requests]
        finally:
            with self.lock:
                self.in_flight[0] -= 1

    async def aclose(self) -> None:
        return None


def answer(request: GenerationRequest) -> GenerationResult:
    params = request.params
    digest = hashlib.sha256(f"{request.prompt}|{params.seed}|{params.temperature}".encode()).hexdigest()
    texts = [f"{digest[:12]}-{i}" for i in range(params.n)]
    return GenerationResult(completions=[Completion(text=t, finish_reason="length") for t in texts],
                            usage=Usage(prompt_tokens=len(request.prompt or ""), completion_tokens=params.n))


def work(count: int) -> list[GenerationRequest]:
    return [GenerationRequest(prompt=f"x = {i}\n", params=SamplingParams(n=1 + i % 3, temperature=0.8, seed=i,
                                                                         max_tokens=4))
            for i in range(count)]


def free_url() -> str:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{free.getsockname()[1]}"


@pytest.fixture
def two() -> Iterator[tuple[OpenAITestServer, OpenAITestServer]]:
    shared = [0, 0]
    servers = [OpenAITestServer(Scripted(in_flight=shared), MODEL).start() for _ in range(2)]
    servers[0].state.shared = shared  # type: ignore[attr-defined]
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


def test_the_setting_takes_one_url_or_several(monkeypatch: pytest.MonkeyPatch) -> None:
    assert split_urls("http://a:8000, http://b:8000/v1/,http://a:8000/v1") == ("http://a:8000/v1", "http://b:8000/v1")
    assert split_urls(("http://a:1", "http://b:2,http://c:3")) == ("http://a:1/v1", "http://b:2/v1", "http://c:3/v1")
    monkeypatch.setenv("SEMCODER_MODEL_URL", "http://a:8000/v1,http://b:8000/v1")
    assert ModelConfig().model_urls == ("http://a:8000/v1", "http://b:8000/v1")
    monkeypatch.setenv("SEMCODER_MODEL_URL", "http://a:8000/v1")
    assert ModelConfig().model_url == "http://a:8000/v1"  # one URL: exactly as written
    monkeypatch.setenv("SEMCODER_MODEL_URL", " , ")
    with pytest.raises(ValidationError, match="no model server URL"):
        ModelConfig()
    # the repeatable options (semcoder eval --model, semcoder data --teacher) give tuples: the same spelling
    run = ModelRunConfig(benchmark="humaneval", model_url=("http://a:1", "http://b:2"), model_name="m", out_dir="o")
    assert run.model_url == "http://a:1,http://b:2"
    assert TeacherConfig(url=["http://a:1", "http://b:2"]).url == "http://a:1,http://b:2"
    generator = load_model(ModelConfig(model_url="http://a:1,http://b:2"))
    assert isinstance(generator, OpenAIGenerator) and generator.base_urls == ("http://a:1/v1", "http://b:2/v1")


def test_least_loaded_first_ties_in_turn() -> None:
    generator = OpenAIGenerator(MODEL, "http://a:1,http://b:2,http://c:3")
    a, b, c = (generator._pick({}) for _ in range(3))
    assert [s.url for s in (a, b, c)] == ["http://a:1/v1", "http://b:2/v1", "http://c:3/v1"]
    generator._release(b, failed=False, answered=True)
    assert generator._pick({}) is b  # the only one with nothing in flight
    generator._release(a, failed=False, answered=True)
    generator._release(c, failed=False, answered=True)
    assert generator._pick({}).url == "http://c:3/v1"  # a and c tie: the turn after b
    generator._release(b, failed=True)  # b failed: skipped while another is up
    assert [s.in_flight for s in generator.servers()] == [0, 0, 1]
    assert generator._pick({}).url == "http://a:1/v1"
    assert generator._pick({"http://a:1/v1": ModelError("x"), "http://c:3/v1": ModelError("y")}) is b  # last resort


def test_requests_are_shared_and_results_equal_one_servers(two: tuple[OpenAITestServer, OpenAITestServer]) -> None:
    first, second = two
    requests = work(40)
    alone = generate_sync(OpenAIGenerator(MODEL, first.url), requests)
    first.state.reset()
    first.state.shared[:] = [0, 0]  # type: ignore[attr-defined]
    spread = generate_sync(OpenAIGenerator(MODEL, [first.url, second.url], concurrency=6), requests)
    assert spread == alone == [answer(r) for r in requests]
    assert first.state.attempts > 0 and second.state.attempts > 0
    assert first.state.attempts + second.state.attempts == 40
    assert first.state.shared[1] <= 6  # type: ignore[attr-defined]  # `concurrency` bounds both servers together


def test_one_at_a_time_alternates(two: tuple[OpenAITestServer, OpenAITestServer]) -> None:
    first, second = two
    generator = OpenAIGenerator(MODEL, f"{first.url},{second.url}", concurrency=1)
    generate_sync(generator, work(10))
    assert (first.state.attempts, second.state.attempts) == (5, 5)
    assert [s.sent for s in generator.servers()] == [5, 5]


def test_seeded_sampling_of_a_real_model_is_the_same_on_either_server(
        openai_server: OpenAITestServer, transformers_generator: TransformersGenerator) -> None:
    other = OpenAITestServer(transformers_generator, SERVED_NAME, tokenizer=transformers_generator.tokenizer).start()
    try:
        requests = [GenerationRequest(prompt=f"def f{i}(x):\n", params=SamplingParams(
            n=2, temperature=1.0, top_p=0.9, max_tokens=6, seed=i, ignore_eos=True)) for i in range(8)]
        alone = generate_sync(OpenAIGenerator(SERVED_NAME, openai_server.url), requests)
        openai_server.state.reset()
        spread = generate_sync(OpenAIGenerator(SERVED_NAME, [openai_server.url, other.url], concurrency=4), requests)
        assert spread == alone
        assert openai_server.state.attempts > 0 and other.state.attempts > 0
    finally:
        other.stop()


def test_a_server_stopped_mid_run_leaves_the_rest_to_the_other() -> None:
    answered = [0]

    def stop_after_five() -> None:  # runs in the first server's loop: stop it from another thread
        answered[0] += 1
        if answered[0] == 5:
            threading.Thread(target=first.stop, daemon=True).start()

    first = OpenAITestServer(Scripted(hook=stop_after_five), MODEL).start()
    second = OpenAITestServer(Scripted(), MODEL).start()
    try:
        requests = work(60)
        generator = OpenAIGenerator(MODEL, [first.url, second.url], concurrency=4, max_retries=1)
        assert generate_sync(generator, requests) == [answer(r) for r in requests]
        assert 5 <= first.state.attempts < 60 and second.state.attempts > 0
        assert first.state.attempts + second.state.attempts >= 60
    finally:
        second.stop()
        first.stop()


def test_a_server_that_is_down_is_skipped(two: tuple[OpenAITestServer, OpenAITestServer]) -> None:
    _, up = two
    down = free_url()
    generator = OpenAIGenerator(MODEL, [down, up.url], concurrency=1, max_retries=1)
    requests = work(10)
    assert generate_sync(generator, requests) == [answer(r) for r in requests]
    assert up.state.attempts == 10
    dead, alive = generator.servers()
    assert (dead.sent, dead.failed, dead.down()) == (1, 1, True)  # tried once, then left alone
    assert (alive.sent, alive.failed) == (10, 0)


def test_a_server_answering_5xx_is_left_for_the_other(two: tuple[OpenAITestServer, OpenAITestServer]) -> None:
    first, second = two
    first.state.fail_next = 100
    requests = work(6)
    generator = OpenAIGenerator(MODEL, [first.url, second.url], concurrency=1, max_retries=1)
    assert generate_sync(generator, requests) == [answer(r) for r in requests]
    assert first.state.attempts == 2 and second.state.attempts == 6  # one request and its retry, then skipped


def test_every_server_down_names_each() -> None:
    urls = [free_url(), free_url()]
    generator = OpenAIGenerator(MODEL, urls, max_retries=0)
    with pytest.raises(ModelError, match="none of the 2 model servers could answer") as raised:
        generate_sync(generator, work(3))
    assert all(f"cannot reach {url}/v1" in str(raised.value) for url in urls)


def test_one_server_down_keeps_its_own_error() -> None:
    url = free_url()
    with pytest.raises(ModelError, match=r"^cannot reach .*APIConnectionError, 0 retries"):
        generate_sync(OpenAIGenerator(MODEL, url, max_retries=0), work(1))


def test_the_check_checks_every_server(two: tuple[OpenAITestServer, OpenAITestServer]) -> None:
    first, second = two
    generator = OpenAIGenerator(MODEL, [first.url, second.url], max_retries=0)
    report = check_endpoint(generator, "semcoder")
    assert report.servers == [f"{first.url}/v1", f"{second.url}/v1"] and report.models == [MODEL]
    assert "the same on all 2 servers" in report.describe()
    assert first.state.attempts == 1 and second.state.attempts == 1  # the probe went to each
    assert served_models(generator) == {MODEL: None}


def test_the_check_refuses_servers_of_different_models(two: tuple[OpenAITestServer, OpenAITestServer]) -> None:
    first, _ = two
    other = OpenAITestServer(Scripted(), "another-model").start()
    try:
        generator = OpenAIGenerator(MODEL, [first.url, other.url], max_retries=0)
        with pytest.raises(EndpointError, match=rf"disagree: {first.url}/v1 serves 'scripted', but {other.url}/v1 "
                                                r"serves 'another-model'; every server in SEMCODER_MODEL_URL"):
            check_endpoint(generator, "semcoder")
        assert served_models(generator) == {}
        result = CliRunner().invoke(model_group, ["check", first.url, other.url, "--model", MODEL,
                                                  "--dialect", "semcoder"])
        assert result.exit_code == 1 and "disagree" in result.output
    finally:
        other.stop()


def test_the_check_refuses_different_context_windows() -> None:
    servers = [OpenAITestServer(Scripted(), MODEL, max_model_len=window).start() for window in (4096, 2048)]
    try:
        generator = OpenAIGenerator(MODEL, [s.url for s in servers], max_retries=0)
        with pytest.raises(EndpointError, match=r"disagree on 'scripted''s context window .*4096.*2048"):
            check_endpoint(generator, "semcoder")
    finally:
        for server in servers:
            server.stop()


def test_the_check_of_one_server_down_names_it(two: tuple[OpenAITestServer, OpenAITestServer]) -> None:
    first, _ = two
    down = free_url()
    with pytest.raises(ModelError, match=f"cannot reach the model server at {down}/v1"):
        check_endpoint(OpenAIGenerator(MODEL, [first.url, down], max_retries=0), "semcoder")


def test_model_check_cli_with_two_servers(two: tuple[OpenAITestServer, OpenAITestServer]) -> None:
    first, second = two
    result = CliRunner().invoke(model_group, ["check", f"{first.url},{second.url}", "--dialect", "semcoder",
                                              "--max-tokens", "4"])
    assert result.exit_code == 0, result.output
    assert f"models at {first.url}/v1: {MODEL}" in result.output and f"models at {second.url}/v1" in result.output
    assert "2 servers of 'scripted'" in result.output and result.output.count("latency:") == 2
