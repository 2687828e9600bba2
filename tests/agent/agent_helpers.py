"""Shared helpers of the agent's tests (not named conftest: other test folders have one too)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from agent.chat_prompts import rendered
from agent.models import Completion, GenerationRequest, GenerationResult, Usage

ROOT = Path(__file__).resolve().parents[2]
SEMCODER = [sys.executable, "-c", "from agent.cli import main; main()"]


class ScriptedModel:
    """Answers each call with the next scripted batch of completions; records every prompt it saw (a chat as
    agent.chat_prompts.rendered shows it; the requests themselves in `requests`)."""

    def __init__(self, script: Sequence[Sequence[str]], tokens_per_call: int = 100) -> None:
        self.script = list(script)
        self.prompts: list[str] = []
        self.requests: list[GenerationRequest] = []
        self.tokens_per_call = tokens_per_call

    def complete(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for request in requests:
            self.requests.append(request)
            self.prompts.append(request.prompt if request.prompt is not None else rendered(request.messages or ()))
            texts = self.script.pop(0) if self.script else ["no idea"]
            completions = [Completion(text=t, finish_reason="stop") for t in texts]
            results.append(GenerationResult(completions=completions,
                                            usage=Usage(prompt_tokens=self.tokens_per_call // 2,
                                                        completion_tokens=self.tokens_per_call // 2)))
        return results


def refined(code: str) -> str:
    """A SemCoder-style answer: rationale, then the code in [Refined]."""
    return ("[MONOLOGUE]\n### Execution Simulation\nThe call runs.\n### Root Cause Analysis\nThe bug.\n"
            f"[Refined]\n```python\n{code}\n```\n[/Refined]")


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (to prove a run left a project untouched)."""
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


GRADES = "def grade(score):\n    if score > 90:\n        return 'A'\n    if score > 80:\n        return 'B'\n    return 'C'\n"
GRADE_TESTS = """from grades import grade


def test_a():
    assert grade(95) == 'A'


def test_a_boundary():
    assert grade(90) == 'A'


def test_b_boundary():
    assert grade(80) == 'B'


def test_c():
    assert grade(10) == 'C'
"""
