"""`semcoder eval BENCH --model URL`: generation, scoring, SemCoder refinement rounds and the report, end to end.

A real tiny checkpoint (and, where exact answers matter, a scripted model) behind the real OpenAI-compatible
test server on loopback; the real sandbox scores every round.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.eval_report import FailingInput, TaskOutcome
from agent.models import Completion, GenerationRequest, GenerationResult, TransformersGenerator, Usage
from evals._failing_test import assert_pairs, docstring_asserts, first_failing_tests
from evals.cli import eval_command
from evals.loaders import load_benchmark, load_humaneval
from training.tiny_model import build_tiny_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))
from openai_test_server import OpenAITestServer

HUMANEVAL_0 = load_humaneval()[0]
CRUX_0 = load_benchmark("cruxeval-o")[0]
WRONG_HAS_CLOSE = (
    "from typing import List\n\n"
    "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n    return False\n"
)


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAITestServer]:
    model_dir = build_tiny_model(tmp_path_factory.mktemp("tiny-llama")).path
    server = OpenAITestServer(TransformersGenerator(model_dir, device="cpu", batch_size=4), "tiny").start()
    yield server
    server.stop()


class ScriptedModel:
    """Writes a wrong solution when asked for code, the canonical one when asked to refine; knows CRUXEval's first output."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for request in requests:
            self.prompts.append(request.prompt)
            if request.prompt.startswith("Simulate the Execution"):
                text = f"[ANSWER]\nassert f({CRUX_0.input}) == {CRUX_0.output}\n"
            elif request.prompt.startswith("Debug and Refine"):
                fixed = HUMANEVAL_0.prompt + HUMANEVAL_0.canonical_solution
                text = f"### Root Cause Analysis\nwrong constant\n[Refined]\n```python\n{fixed}\n```\n[/Refined]"
            else:
                text = WRONG_HAS_CLOSE + "```"
            results.append(GenerationResult(completions=[Completion(text=text, finish_reason="stop")],
                                            usage=Usage(prompt_tokens=1, completion_tokens=1)))
        return results

    async def aclose(self) -> None:
        return None


def _run(server: OpenAITestServer, benchmark: str, out: Path, *extra: str, dialect: str = "semcoder"):
    args = [benchmark, "--model", server.url, "--model-name", server.model_name, "--out", str(out),
            "--workers", "2", "--dialect", dialect, *extra]
    return CliRunner().invoke(eval_command, args, catch_exceptions=False)


def test_tiny_model_run_reports_every_round_and_resumes(tiny_server: OpenAITestServer, tmp_path: Path) -> None:
    result = _run(tiny_server, "humaneval", tmp_path, "--limit", "2", "--refine-rounds", "2", "--max-tokens", "8")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["round"] for r in report["rounds"]] == [0, 1, 2]
    assert report["n_tasks"] == 2
    failing_after_generation = 2 - report["rounds"][0]["solved_tasks"]
    assert report["rounds"][1]["refined_samples"] == failing_after_generation
    table = (tmp_path / "report.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in table if line.startswith("| ") and "round" not in line] == \
        ["0", "1", "2"]
    assert (tmp_path / "pass_at_1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    generations = (tmp_path / "generations.jsonl").read_text().splitlines()
    assert [json.loads(line)["task_id"] for line in generations] == ["HumanEval/0", "HumanEval/1"]
    requests_made = tiny_server.state.attempts
    assert requests_made >= 2
    outcomes = (tmp_path / "tasks.jsonl").read_text()

    rerun = _run(tiny_server, "humaneval", tmp_path, "--limit", "2", "--refine-rounds", "2", "--max-tokens", "8")
    assert rerun.exit_code == 0, rerun.output
    assert tiny_server.state.attempts == requests_made + 1  # the endpoint check's probe; nothing generated again
    assert (tmp_path / "generations.jsonl").read_text().splitlines() == generations
    assert json.loads((tmp_path / "report.json").read_text())["rounds"] == report["rounds"]
    assert (tmp_path / "tasks.jsonl").read_text() == outcomes  # the failing inputs shown come back from round_K.json


@pytest.fixture
def scripted() -> Iterator[tuple[OpenAITestServer, ScriptedModel]]:
    model = ScriptedModel()
    server = OpenAITestServer(model, "scripted").start()
    yield server, model
    server.stop()


def test_refinement_fixes_a_failing_task_with_its_first_failing_assert(scripted, tmp_path: Path) -> None:
    server, model = scripted
    result = _run(server, "humaneval+", tmp_path, "--tasks", "HumanEval/0", "--refine-rounds", "2", "--json")
    assert result.exit_code == 0, result.output
    rounds = json.loads(result.stdout.strip().splitlines()[-1])["rounds"]
    assert [(r["pass_at_1"], r["refined_samples"]) for r in rounds] == [(0.0, 0), (1.0, 1), (1.0, 0)]
    [refine_prompt] = [p for p in model.prompts if p.startswith("Debug and Refine")]
    # `return False` first fails HumanEval's first assert that expects True.
    assert "retv = has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)" in refine_prompt
    assert "assert retv == True" in refine_prompt
    # tasks.jsonl (agent/eval_report.py): each round's sample, its verdict, and the failing input shown for it next
    [task] = [TaskOutcome.model_validate_json(line) for line in (tmp_path / "tasks.jsonl").read_text().splitlines()]
    assert task.task_id == "HumanEval/0" and [r.round for r in task.rounds] == [0, 1, 2]
    first, refined, last = (r.samples[0] for r in task.rounds)
    assert (first.passed, refined.passed, last.passed) == (False, True, True)
    assert "return False" in first.program and first.detail
    assert first.failing_input == FailingInput(call="has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)",
                                               expected="True")
    assert refined.failing_input is None and last.failing_input is None
    assert "distance < threshold" in refined.program  # the canonical solution the script refined it to


def test_cruxeval_predictions_are_scored_without_refinement(scripted, tmp_path: Path) -> None:
    server, _ = scripted
    result = _run(server, "cruxeval-o", tmp_path, "--limit", "2", "--json")
    assert result.exit_code == 0, result.output
    [only_round] = json.loads(result.stdout.strip().splitlines()[-1])["rounds"]
    assert only_round["pass_at_1"] == 0.5  # the script knows sample_0's output, not sample_1's
    refused = _run(server, "cruxeval-o", tmp_path, "--limit", "2", "--refine-rounds", "1")
    assert refused.exit_code != 0 and "--refine-rounds supports" in refused.output


def test_first_failing_test_is_the_first_assert_the_program_fails(runner) -> None:
    pairs = {HUMANEVAL_0.task_id: assert_pairs(HUMANEVAL_0.test, HUMANEVAL_0.entry_point)}
    always_true = WRONG_HAS_CLOSE.replace("return False", "return True")
    crashing = "def has_close_elements(numbers, threshold):\n    raise ValueError\n"
    chosen = first_failing_tests([(HUMANEVAL_0, WRONG_HAS_CLOSE), (HUMANEVAL_0, always_true),
                                  (HUMANEVAL_0, crashing)], pairs, runner)
    assert [test.expected for test in chosen] == ["True", "False", "True"]
    assert chosen[1].call == "has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05)"
    assert len(pairs[HUMANEVAL_0.task_id]) == 7


def test_mbpp_plus_failing_test_comes_from_the_prompts_example_assert() -> None:
    task = load_benchmark("mbpp+")[0]
    [pair] = assert_pairs(docstring_asserts(task.prompt), task.entry_point)
    assert pair.call == "set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10)))"
    assert pair.expected == "set((4, 5))"


def test_several_model_servers_give_the_same_rounds(scripted, tmp_path: Path) -> None:
    """--model given twice: both servers are checked and answer, and the rounds are those of one server."""
    server, _ = scripted
    other = OpenAITestServer(ScriptedModel(), "scripted").start()
    try:
        args = ["humaneval+", "--model", server.url, "--model", other.url, "--model-name", "scripted", "--out",
                str(tmp_path), "--workers", "2", "--dialect", "semcoder", "--tasks", "HumanEval/0",
                "--refine-rounds", "2", "--json"]
        result = CliRunner().invoke(eval_command, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        rounds = json.loads(result.stdout.strip().splitlines()[-1])["rounds"]
        assert [(r["pass_at_1"], r["refined_samples"]) for r in rounds] == [(0.0, 0), (1.0, 1), (1.0, 0)]
        assert server.state.attempts >= 2 and other.state.attempts >= 2  # each: the check's probe and work
    finally:
        other.stop()


def test_model_servers_of_different_models_are_refused_before_work(scripted, tmp_path: Path) -> None:
    server, _ = scripted
    other = OpenAITestServer(ScriptedModel(), "another").start()
    try:
        args = ["humaneval", "--model", f"{server.url},{other.url}", "--model-name", "scripted", "--out",
                str(tmp_path / "out"), "--limit", "1", "--dialect", "semcoder"]
        result = CliRunner().invoke(eval_command, args, catch_exceptions=False)
        assert result.exit_code == 1
        assert "the model servers disagree" in result.output and "every server in --model URL" in result.output
        assert not (tmp_path / "out").exists() and other.state.attempts == 0
    finally:
        other.stop()
