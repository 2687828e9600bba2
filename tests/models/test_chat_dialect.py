"""The chat dialect in the model layer: chat requests, /v1/chat/completions over a real socket (rendered by a real
tokenizer's Jinja chat template), the transformers backend's template, and the endpoint checks before a run."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from conftest import SERVED_NAME
from openai_test_server import OpenAITestServer
from pydantic import ValidationError

from agent.models import (
    ChatMessage,
    Completion,
    ContextWindowError,
    EndpointError,
    GenerationRequest,
    GenerationResult,
    ModelError,
    OpenAIGenerator,
    SamplingParams,
    TransformersGenerator,
    Usage,
    check_endpoint,
    generate_sync,
    resolve_dialect,
)
from training.tiny_model import CHAT_TEMPLATE

CHAT = (ChatMessage(role="system", content="You fix Python code."),
        ChatMessage(role="user", content="def add(a, b):\n    return a - b\n\nFix it."))


def chat(messages: Sequence[ChatMessage] = CHAT, **params: object) -> GenerationRequest:
    return GenerationRequest(messages=tuple(messages), params=SamplingParams(**params))


def as_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    return [m.model_dump() for m in messages]


def test_a_request_is_a_prompt_or_a_chat_never_both() -> None:
    assert chat().is_chat and not GenerationRequest(prompt="x").is_chat
    for bad in ({}, {"prompt": "x", "messages": as_dicts(CHAT)}, {"messages": []},
                {"messages": [{"role": "robot", "content": "x"}]}):
        with pytest.raises(ValidationError):
            GenerationRequest(**bad)


def test_auto_dialect_is_semcoder_only_for_semcoder_models() -> None:
    assert resolve_dialect("auto", "semcoder/semcoder_s_1030") == "semcoder"
    assert resolve_dialect("auto", "openai:SemCoder-6.7B") == "semcoder"
    assert resolve_dialect("auto", "transformers:/ckpt/semcoder_1030") == "semcoder"
    assert resolve_dialect("auto", "Qwen/Qwen2.5-Coder-7B-Instruct") == "chat"
    assert resolve_dialect("chat", "semcoder/semcoder_s_1030") == "chat"
    assert resolve_dialect("semcoder", "qwen2.5-coder:7b") == "semcoder"


# --- the transformers backend renders chats with the tokenizer's template ----------------------------------------


def test_transformers_renders_a_chat_by_its_template(transformers_generator: TransformersGenerator) -> None:
    tokenizer = transformers_generator.tokenizer
    assert tokenizer.chat_template == CHAT_TEMPLATE  # saved with the checkpoint, read back
    expected = tokenizer.apply_chat_template(as_dicts(CHAT), tokenize=False, add_generation_prompt=True)
    assert transformers_generator.render(chat()) == expected
    assert expected.startswith("<s><|im_start|>system\nYou fix Python code.<|im_end|></s>\n<|im_start|>user\n")
    assert expected.endswith("<|im_start|>assistant\n")
    (result,) = generate_sync(transformers_generator, [chat(max_tokens=5, ignore_eos=True)])
    ids = tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert ids.count(tokenizer.bos_token_id) == 1  # the template's BOS, none added on top
    assert result.usage.prompt_tokens == len(ids)
    assert result.usage.completion_tokens == 5


def test_raw_prompts_and_chats_mix_in_one_call(transformers_generator: TransformersGenerator) -> None:
    raw = GenerationRequest(prompt="def add(a, b):\n", params=SamplingParams(max_tokens=4, ignore_eos=True))
    together = generate_sync(transformers_generator, [raw, chat(max_tokens=4, ignore_eos=True), raw])
    alone = [generate_sync(transformers_generator, [r])[0] for r in (raw, chat(max_tokens=4, ignore_eos=True))]
    assert [together[0], together[1]] == alone and together[2] == together[0]


def test_a_tokenizer_without_a_chat_template_is_a_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    bare = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, bare)
    (bare / "chat_template.jinja").unlink()
    generator = TransformersGenerator(bare, device="cpu")
    assert not generator.tokenizer.chat_template
    with pytest.raises(ModelError, match=r"has no chat template.*--dialect semcoder"):
        generate_sync(generator, [chat(max_tokens=2)])
    (raw,) = generate_sync(generator, [GenerationRequest(prompt="x = 1\n", params=SamplingParams(max_tokens=2))])
    assert raw.completions  # raw prompts still work


# --- /v1/chat/completions over a real socket ----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_chat_over_http_is_the_backends_own_answer(
    openai_server: OpenAITestServer, transformers_generator: TransformersGenerator, stream: bool
) -> None:
    work = [chat(n=2, max_tokens=6, ignore_eos=True), chat(CHAT[1:], max_tokens=4, ignore_eos=True)]
    over_http = generate_sync(OpenAIGenerator(SERVED_NAME, openai_server.url, stream=stream), work)
    direct = generate_sync(transformers_generator, work)
    assert over_http == direct
    assert [len(r.completions) for r in over_http] == [2, 1]
    assert over_http[0].usage.completion_tokens == 12
    [first] = [c for c in openai_server.state.chats if len(c.messages) == 2]  # (requests run concurrently)
    assert first.messages == list(CHAT)  # the server received the system + user messages as sent
    tokenizer = transformers_generator.tokenizer
    assert first.rendered == tokenizer.apply_chat_template(as_dicts(CHAT), tokenize=False, add_generation_prompt=True)
    assert openai_server.state.prompts == []  # nothing went to /v1/completions


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_chat_sampling_seed_and_stop_travel(
    openai_server: OpenAITestServer, transformers_generator: TransformersGenerator, stream: bool
) -> None:
    sampled = chat(n=3, temperature=1.0, top_p=0.9, max_tokens=8, seed=11, ignore_eos=True)
    (free,) = generate_sync(transformers_generator, [sampled])
    stop = free.completions[1].text[2:4]
    stopped = sampled.model_copy(update={"params": sampled.params.model_copy(update={"stop": (stop,)})})
    (over_http,) = generate_sync(OpenAIGenerator(SERVED_NAME, openai_server.url, stream=stream), [stopped])
    (direct,) = generate_sync(transformers_generator, [stopped])
    assert over_http == direct
    assert over_http.completions[1].finish_reason == "stop" and stop not in over_http.completions[1].text


def test_chat_requests_are_retried_like_completions(openai_server: OpenAITestServer) -> None:
    openai_server.state.fail_next = 2
    (result,) = generate_sync(OpenAIGenerator(SERVED_NAME, openai_server.url, max_retries=3), [chat(max_tokens=2)])
    assert len(result.completions) == 1
    assert openai_server.state.attempts == 3


# --- endpoint checks ------------------------------------------------------------------------------------------------


class Echo:
    """A scripted model: answers 'ok' to anything."""

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return [GenerationResult(completions=[Completion(text="ok", finish_reason="stop")] * r.params.n,
                                 usage=Usage(prompt_tokens=1, completion_tokens=1)) for r in requests]

    async def aclose(self) -> None:
        return None


@pytest.fixture
def make_server(transformers_generator: TransformersGenerator) -> Iterator:
    started: list[OpenAITestServer] = []

    def make(**options: object) -> OpenAITestServer:
        options.setdefault("tokenizer", transformers_generator.tokenizer)
        server = OpenAITestServer(Echo(), "coder", **options).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def generator(server: OpenAITestServer, name: str = "coder") -> OpenAIGenerator:
    return OpenAIGenerator(name, server.url, max_retries=0)


def test_a_good_endpoint_reports_its_window_and_the_prompts_tokens(make_server, transformers_generator) -> None:
    server = make_server(max_model_len=512)
    report = check_endpoint(generator(server), "chat", chat(), max_new_tokens=100)
    rendered = transformers_generator.render(chat())
    assert report.models == ["coder"] and report.max_model_len == 512
    assert report.prompt_tokens == len(transformers_generator.tokenizer(rendered, add_special_tokens=False)["input_ids"])
    assert server.state.chats[-1].messages == list(CHAT)  # the probe is the run's own prompt, one token's work


def test_a_chat_only_server_asked_for_completions_names_the_dialect(make_server) -> None:
    server = make_server(routes=frozenset({"chat"}))
    with pytest.raises(EndpointError, match=r"no /v1/completions route \(404.*it answers on /v1/chat/completions: "
                                            r"pass --dialect chat"):
        check_endpoint(generator(server), "semcoder")


def test_a_completions_only_server_asked_for_chat_names_the_dialect(make_server) -> None:
    server = make_server(routes=frozenset({"completions"}))
    with pytest.raises(EndpointError, match=r"no /v1/chat/completions route .*pass --dialect semcoder"):
        check_endpoint(generator(server), "chat", chat())
    # and mid-run, the backend's own error says the same
    with pytest.raises(EndpointError, match="try --dialect semcoder"):
        generate_sync(generator(server), [chat(max_tokens=2)])


def test_a_model_without_a_chat_template_names_the_dialect(make_server) -> None:
    server = make_server(tokenizer=None)
    with pytest.raises(EndpointError, match=r"has no chat template .*pass --dialect semcoder"):
        check_endpoint(generator(server), "chat", chat())


def test_an_unknown_model_lists_the_served_names(make_server) -> None:
    server = make_server()
    with pytest.raises(EndpointError, match=r"does not serve 'Qwen/Qwen2.5-Coder-7B-Instruct'; it serves: 'coder' "
                                            r"\(pass one of them: --model openai:NAME\)"):
        check_endpoint(generator(server, "Qwen/Qwen2.5-Coder-7B-Instruct"), "chat", chat())
    assert server.state.attempts == 0  # refused before any generation request


def test_a_prompt_past_the_context_window_is_refused_before_the_run(make_server) -> None:
    server = make_server(max_model_len=200)
    long_chat = chat([CHAT[0], ChatMessage(role="user", content="x = 1\n" * 20)])
    report = check_endpoint(generator(server), "chat", long_chat, max_new_tokens=0)
    assert report.prompt_tokens and report.prompt_tokens < 200
    # the prompt fits, but not with the completion budget: counted here from the server's own count
    with pytest.raises(ContextWindowError, match=r"\d+ prompt tokens .* \+ 512 new tokens > max_model_len 200 .*"
                                                 r"lower --max-new-tokens"):
        check_endpoint(generator(server), "chat", long_chat, max_new_tokens=512)
    # the prompt alone is past the window: the server refuses it (vLLM's 400), and the check says what to do
    longer = chat([CHAT[0], ChatMessage(role="user", content="x = 1\n" * 400)])
    with pytest.raises(ContextWindowError, match=r"does not fit 'coder''s context window of 200 tokens .*maximum "
                                                 r"context length is 200 tokens.*show less context"):
        check_endpoint(generator(server), "chat", longer, max_new_tokens=10)


def test_an_unreachable_server_is_a_model_error() -> None:
    nobody = OpenAIGenerator("coder", "http://127.0.0.1:9", max_retries=0, timeout_s=2)
    with pytest.raises(ModelError, match=r"cannot reach the model server at http://127\.0\.0\.1:9/v1"):
        check_endpoint(nobody, "chat")
