"""Edit formats in the repair loop, end to end: a chat model answers with SEARCH/REPLACE blocks over the real
OpenAI-compatible test server's chat route (messages rendered by a tiny trained tokenizer's chat template); an answer
that cannot be applied is fed back in the next prompt (chat) or kept in the history only (SemCoder, whose prompt
stays the paper's byte for byte)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import GRADE_TESTS, GRADES, ScriptedModel, refined, write

from agent.completion import LoopModel
from agent.edits import instructions
from agent.models import Completion, GenerationRequest, GenerationResult, OpenAIGenerator, Usage
from agent.repair_settings import parse
from agent.state import Attempt, RunConfig
from agent.tasks import TaskError, function_task, project_task

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from openai_test_server import OpenAITestServer

PRICES = (Path(__file__).resolve().parent / "edit_fixtures" / "shop" / "prices.py").read_text()
FIXED_LINE = "        return self.quantity >= BULK_THRESHOLD\n"
BUGGY_LINE = "        return self.quantity > BULK_THRESHOLD\n"
BUGGY = PRICES.replace(FIXED_LINE, BUGGY_LINE)
TESTS = ("from shop.prices import Item, item_total\n\n\ndef test_ten_is_bulk():\n"
         "    assert item_total(Item('a', 2.0, 10)) == 19.0\n\n\ndef test_two():\n"
         "    assert item_total(Item('a', 2.0, 2)) == 4.0\n")


class ScriptedAnswers:
    """The server side: each request gets the next scripted answer; every prompt is recorded as received."""

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []  # each chat's user message

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for request in requests:
            assert request.messages is not None, "the chat dialect sends messages"
            self.prompts.append(request.messages[-1].content)
            text = self.answers.pop(0) if self.answers else "no idea"
            results.append(GenerationResult(completions=[Completion(text=text, finish_reason="stop")],
                                            usage=Usage(prompt_tokens=10, completion_tokens=10)))
        return results

    async def aclose(self) -> None:
        return None


@pytest.fixture
def chat_server(chat_tokenizer: Any) -> Iterator[tuple[OpenAITestServer, ScriptedAnswers]]:
    answers = ScriptedAnswers([])
    server = OpenAITestServer(answers, "chat-model", tokenizer=chat_tokenizer).start()
    yield server, answers
    server.stop()


def block(search: str, replace: str) -> str:
    return f"shop/prices.py\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def test_a_block_that_does_not_match_is_fed_back_and_the_next_answer_fixes_the_bug(tmp_path, run_graph, chat_server):
    server, answers = chat_server
    answers.answers = [
        "<think>\nTen items should be bulk: the comparison is strict.\n</think>\n"
        + block(BUGGY_LINE.replace("BULK_THRESHOLD", "BULK_THRESHOLDS"), FIXED_LINE),  # a typo: matches nothing
        block(BUGGY_LINE, FIXED_LINE)]
    root = write(tmp_path / "p", {"shop/__init__.py": "", "shop/prices.py": BUGGY, "test_prices.py": TESTS})
    model = LoopModel(OpenAIGenerator("chat-model", server.url))
    try:
        final = run_graph(project_task(root), RunConfig(model="openai:chat-model", dialect="chat", patcher="model",
                                                        samples=1, max_iterations=3), model)
    finally:
        model.close()
    assert final["status"] == "fixed", final["stop_reason"]
    assert Attempt(**final["best"]).files == {"shop/prices.py": PRICES}
    first, second = answers.prompts
    problem = ("your SEARCH block 1 did not match any lines of shop/prices.py; the closest line is 32:\n"
               + BUGGY_LINE.rstrip("\n"))
    assert instructions("search_replace") in first and "Your previous answer" not in first
    assert instructions("search_replace") in second
    assert f"Your previous answer could not be applied: {problem}" in second, second[-800:]
    assert [chat.rendered.count("<|im_start|>") for chat in server.state.chats] == [3, 3]  # the template rendered them
    patches = [h for h in final["history"] if h["node"] == "patch"]
    assert patches[0]["edit_format"] == "search_replace" and patches[0]["candidates"] == []
    assert patches[0]["rejected"] == [f"sample 0: no_match: {problem}"]
    assert patches[0]["reasoning"] == ["Ten items should be bulk: the comparison is strict."]
    assert patches[1]["candidates"] == ["model sample 0"] and "feedback" not in patches[1]
    assert [h["edit_format"] for h in final["history"] if h["node"] == "reason"] == ["search_replace"] * 2
    traces = [h for h in final["history"] if h["node"] == "trace"]
    assert traces[0]["focus"] == traces[1]["focus"] and not final.get("fruitless")  # a slip of form: same focus


def test_semcoder_keeps_its_prompt_and_the_problem_stays_in_the_history(tmp_path, run_graph):
    write(tmp_path, {"grades.py": GRADES, "test_grades.py": GRADE_TESTS})
    task = function_task(tmp_path / "grades.py", tmp_path / "test_grades.py")
    fixed = GRADES.replace("score > 90", "score >= 90").replace("score > 80", "score >= 80")
    unmatched = "<<<<<<< SEARCH\n    if score > 91:\n=======\n    if score >= 90:\n>>>>>>> REPLACE\n"
    model = ScriptedModel([[unmatched], [refined(fixed)]])
    final = run_graph(task, RunConfig(model="x:y", dialect="semcoder", patcher="model", samples=1,
                                      edit_format="search_replace"), model)
    assert final["status"] == "fixed", final["stop_reason"]
    first, second = model.prompts
    assert second == first  # the same best attempt, and no note: SemCoder's raw prompt as it was trained
    assert first.startswith("Debug and Refine the Code: You are given a a problem") and "SEARCH" not in first
    patches = [h for h in final["history"] if h["node"] == "patch"]
    assert patches[0]["feedback"].startswith("your SEARCH block 1 did not match any lines of grades.py; the closest "
                                             "line is 2:\n    if score > 90:")
    assert patches[1]["fallbacks"] == ["sample 0: there is no SEARCH/REPLACE block (`<<<<<<< SEARCH` ... "
                                       "`>>>>>>> REPLACE`) in your answer; applied the answer's whole function instead"]


def test_auto_is_the_whole_function_for_semcoder(tmp_path, run_graph):
    write(tmp_path, {"grades.py": GRADES, "test_grades.py": GRADE_TESTS})
    task = function_task(tmp_path / "grades.py", tmp_path / "test_grades.py")
    fixed = GRADES.replace("score > 90", "score >= 90").replace("score > 80", "score >= 80")
    final = run_graph(task, RunConfig(model="x:y", dialect="semcoder", patcher="model", samples=1),
                      ScriptedModel([[refined(fixed)]]))
    assert final["status"] == "fixed"
    assert [h["edit_format"] for h in final["history"] if h["node"] in ("reason", "patch")] == ["function"] * 2


def test_the_edit_format_is_a_repair_setting():
    assert parse({"edit_format": "udiff"}).run_config(None).edit_format == "udiff"
    assert parse({}).run_config(None).edit_format == "auto"
    with pytest.raises(TaskError, match="--edit-format: Input should be 'auto', 'function', 'search_replace' or "
                                        "'udiff'"):
        parse({"edit_format": "xml"})
