"""`semcoder eval --dialect chat`: an instruct model generates, refines and predicts through /v1/chat/completions of
a real OpenAI-compatible server on loopback (chats rendered by a real tokenizer's Jinja template); the endpoint
checks refuse a run that cannot work before it starts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from agent import chat_prompts
from agent.models import Completion, GenerationRequest, GenerationResult, Usage
from evals.cli import eval_command
from evals.loaders import load_benchmark, load_humaneval
from training.tiny_model import PRESETS, build_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))
from openai_test_server import OpenAITestServer

HUMANEVAL_0 = load_humaneval()[0]
CRUX_0 = load_benchmark("cruxeval-o")[0]
WRONG = "from typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n" \
        "    return False\n"


class ChatModel:
    """A scripted instruct model: wrong code when asked for code, the canonical solution when asked to fix it, and
    CRUXEval's first output in [ANSWER] tags after some reasoning; nothing useful to a raw prompt."""

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for request in requests:
            user = (request.messages or ())[-1].content if request.is_chat else ""
            if not request.is_chat:
                text = "no idea"
            elif "[ANSWER]" in user:
                text = f"Let me execute the code step by step.\n[ANSWER]\nassert f({CRUX_0.input}) == {CRUX_0.output}\n" \
                       "[/ANSWER]"
            elif "### Failed Test" in user:
                text = f"The function never compares.\n```python\n{HUMANEVAL_0.prompt}{HUMANEVAL_0.canonical_solution}```"
            else:
                text = f"Here is the script:\n```python\n{WRONG}```\nIt solves the problem."
            results.append(GenerationResult(completions=[Completion(text=text, finish_reason="stop")] * request.params.n,
                                            usage=Usage(prompt_tokens=1, completion_tokens=1)))
        return results

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return build_tokenizer(PRESETS["test"])


@pytest.fixture
def serve(tokenizer: Any) -> Iterator:
    started: list[OpenAITestServer] = []

    def start(**options: Any) -> OpenAITestServer:
        server = OpenAITestServer(ChatModel(), "Qwen/Qwen2.5-Coder-7B-Instruct", tokenizer=tokenizer,
                                  **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def run(server: OpenAITestServer, benchmark: str, out: Path, *extra: str, name: str | None = None):
    args = [benchmark, "--model", server.url, "--model-name", name or server.model_name, "--out", str(out),
            "--workers", "2", "--json", *extra]
    return CliRunner().invoke(eval_command, args, catch_exceptions=False)


def test_humaneval_generation_and_refinement_through_the_chat_route(serve, tmp_path: Path) -> None:
    server = serve()
    result = run(server, "humaneval", tmp_path, "--tasks", "HumanEval/0", "--refine-rounds", "1", "--dialect", "chat")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["dialect"] == "chat"
    assert [(r["pass_at_1"], r["refined_samples"]) for r in report["rounds"]] == [(0.0, 0), (1.0, 1)]
    assert server.state.prompts == []  # nothing went to /v1/completions
    probe, generation, refine = server.state.chats
    assert [m.role for m in generation.messages] == ["system", "user"]
    assert generation.messages[0].content == chat_prompts.NL2CODE_SYSTEM
    assert generation.messages[1].content.startswith(
        "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"
        "```\nfrom typing import List\n")
    assert probe.messages == generation.messages  # the endpoint check sent the longest prompt of the run
    user = refine.messages[1].content
    assert "retv = has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)\nassert retv == True" in user
    assert "    return False" in user
    assert refine.rendered.startswith("<s><|im_start|>system\n" + chat_prompts.REFINE_SYSTEM)
    generated = json.loads((tmp_path / "generations.jsonl").read_text())
    assert generated["solutions"] == [WRONG.rstrip("\n")]  # the fence the chat answer opened itself


def test_cruxeval_output_prediction_through_the_chat_route(serve, tmp_path: Path) -> None:
    server = serve()
    result = run(server, "cruxeval-o", tmp_path, "--limit", "2")  # auto: a Qwen model is prompted in chat
    assert result.exit_code == 0, result.output
    [only] = json.loads(result.stdout.strip().splitlines()[-1])["rounds"]
    assert only["pass_at_1"] == 0.5  # the script knows sample_0's output, not sample_1's
    assert all(chat.messages[0].content == chat_prompts.EXECUTION_SYSTEM for chat in server.state.chats)


def test_endpoint_checks_refuse_before_any_work(serve, tmp_path: Path) -> None:
    server = serve()
    unknown = run(server, "humaneval", tmp_path / "a", "--limit", "1", name="qwen2.5-coder:7b")
    assert unknown.exit_code == 1
    assert "does not serve 'qwen2.5-coder:7b'; it serves: 'Qwen/Qwen2.5-Coder-7B-Instruct' (pass one of them: " \
           "--model-name NAME)" in unknown.output
    assert server.state.attempts == 0 and not (tmp_path / "a").exists()  # refused before any request
    small = serve(max_model_len=600)  # the longest of the first 3 prompts is some 380 tokens here
    too_long = run(small, "humaneval", tmp_path / "c", "--limit", "3", "--max-tokens", "256")
    assert too_long.exit_code == 1
    assert "prompt tokens (the longest prompt this run is known to send) + 256 new tokens > max_model_len 600" \
        in too_long.output and "lower --max-tokens" in too_long.output
    [probe] = small.state.chats  # one request of one token: the longest prompt, HumanEval/1's
    assert "def separate_paren_groups(" in probe.messages[1].content


def test_completions_only_server_names_the_dialect(tokenizer: Any, tmp_path: Path) -> None:
    server = OpenAITestServer(ChatModel(), "coder", tokenizer=tokenizer, routes=frozenset({"completions"})).start()
    try:
        result = run(server, "humaneval", tmp_path, "--limit", "1", "--dialect", "chat")
    finally:
        server.stop()
    assert result.exit_code == 1
    assert "has no /v1/chat/completions route (404: Not Found), which --dialect chat needs; it answers on " \
           "/v1/completions: pass --dialect semcoder" in result.output
