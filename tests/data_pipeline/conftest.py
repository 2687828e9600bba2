"""Fixtures of the data pipeline tests: one sandbox pool, a small corpus, a scripted teacher on loopback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from agent.models import Completion, GenerationRequest, GenerationResult, Usage
from sandbox import Pool
from training.data.executor import BatchExecutor, ExecOptions

# The model layer's real OpenAI-compatible server; here it serves scripted answers instead of a model.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))
from openai_test_server import OpenAITestServer

CORPUS = Path(__file__).resolve().parent / "corpus"
FAST = ExecOptions(call_timeout_s=0.5, item_timeout_s=3.0, items_per_job=16)
Script = Callable[[str], list[str]]


@pytest.fixture(scope="session")
def pool() -> Iterator[Pool]:
    with Pool(2) as shared:
        yield shared


@pytest.fixture(scope="session")
def executor(pool: Pool) -> BatchExecutor:
    return BatchExecutor(pool, FAST)


@pytest.fixture
def corpus() -> Path:
    return CORPUS


class ScriptedTeacher:
    """A Generator whose answers come from a script: prompt -> completions (cycled to n)."""

    def __init__(self) -> None:
        self.script: Script = lambda prompt: [""]
        self.prompts: list[str] = []

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for request in requests:
            self.prompts.append(request.prompt)
            answers = self.script(request.prompt) or [""]
            texts = [answers[i % len(answers)] for i in range(request.params.n)]
            results.append(GenerationResult(
                completions=[Completion(text=_cut(t, request.params.stop), finish_reason="stop") for t in texts],
                usage=Usage(prompt_tokens=1, completion_tokens=1)))
        return results

    async def aclose(self) -> None:
        return None


def _cut(text: str, stop: tuple[str, ...]) -> str:
    """Like a real server: the completion ends before the first stop string."""
    for marker in stop:
        if marker in text:
            text = text[: text.index(marker)]
    return text


@pytest.fixture(scope="session")
def _teacher_server() -> Iterator[tuple[OpenAITestServer, ScriptedTeacher]]:
    teacher = ScriptedTeacher()
    server = OpenAITestServer(teacher, "teacher").start()
    yield server, teacher
    server.stop()


@pytest.fixture
def teacher_server(_teacher_server) -> tuple[OpenAITestServer, ScriptedTeacher]:
    server, teacher = _teacher_server
    teacher.script = lambda prompt: [""]
    teacher.prompts.clear()
    return server, teacher
