"""`semcoder repair` with an instruct model: the chat dialect end to end, over a real OpenAI-compatible server on
loopback whose /v1/chat/completions renders the messages with a real (tiny, trained) tokenizer's Jinja chat template;
the chat prompts per feedback mode; the endpoint checks before a run, through the CLI's error boundary."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import ROOT, ScriptedModel
from click.testing import CliRunner

from agent import chat_prompts
from agent.models import Completion, GenerationRequest, GenerationResult, Usage
from agent.nodes import PoolTracer
from agent.persistence import open_store
from agent.prompts import refine_prompt
from agent.refine import FailingTest, refine_once
from agent.repair_cli import repair_command
from agent.repair_settings import parse
from agent.tasks import TaskError

sys.path.insert(0, str(ROOT / "tests" / "models"))
from openai_test_server import OpenAITestServer

FIXED = ('def restock_list(stock: dict[str, int], threshold: int) -> list[str]:\n'
         '    """Items whose count is at or below the threshold, sorted by name."""\n'
         '    return sorted(item for item, count in stock.items() if count <= threshold)\n')
CHAT_ANSWER = ("The comparison excludes items exactly at the threshold: `count < threshold` must be "
               f"`count <= threshold`.\n\n```python\n{FIXED}```\n")


class ChatFixer:
    """A scripted instruct model: a chat is answered with the fix in a ```python block; a raw prompt gets nothing."""

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.requests += requests
        return [GenerationResult(completions=[Completion(text=CHAT_ANSWER if r.is_chat else "no idea",
                                                         finish_reason="stop")] * r.params.n,
                                 usage=Usage(prompt_tokens=10, completion_tokens=10)) for r in requests]

    async def aclose(self) -> None:
        return None


@pytest.fixture
def serve(chat_tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    started: list[OpenAITestServer] = []

    def start(name: str = "coder", **options: Any) -> OpenAITestServer:
        options.setdefault("tokenizer", chat_tokenizer)
        server = OpenAITestServer(ChatFixer(), name, **options).start()
        started.append(server)
        monkeypatch.setenv("SEMCODER_MODEL_URL", server.url + "/v1")
        return server

    yield start
    for server in started:
        server.stop()


def project(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    root = tmp_path / "inventory"
    shutil.copytree(ROOT / "examples" / "inventory", root)
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    return root


def repair(root: Path, db: Path, *args: str):
    return CliRunner().invoke(repair_command, [str(root), "--db", str(db), "--json", "--patcher", "model",
                                               "--samples", "1", "--max-iterations", "2", *args])


def runs_in(db: Path) -> int:
    with open_store(db) as store:
        return len(store.list(10))


def test_repair_through_the_chat_route_fixes_the_example(serve, tmp_path: Path) -> None:
    server = serve("Qwen/Qwen2.5-Coder-7B-Instruct")
    result = repair(project(tmp_path), tmp_path / "runs.sqlite", "--model", "openai:Qwen/Qwen2.5-Coder-7B-Instruct")
    out = json.loads(result.stdout)
    assert (result.exit_code, out["status"]) == (0, "fixed"), (result.stderr, out["stop_reason"])
    assert "+    return sorted(item for item, count in stock.items() if count <= threshold)" in out["diff"]
    assert server.state.prompts == []  # auto: not a SemCoder model, so nothing went to /v1/completions
    probe, first, *_ = server.state.chats  # the endpoint check's one-token probe, then the loop's prompt
    assert [m.role for m in first.messages] == ["system", "user"]
    system, user = (m.content for m in first.messages)
    assert system.startswith(chat_prompts.REFINE_SYSTEM)
    assert "### Failed Test\n```python\nretv = restock_list({'apples': 3, 'bread': 10, 'milk': 5}, 5)\nassert retv == ['apples', 'milk']\n```" in user
    assert "if count < threshold)" in user and "### Code\n```python\ndef restock_list(" in user
    assert user.endswith(chat_prompts.WHOLE_FUNCTION_ANSWER)
    # The server rendered the chat with the tokenizer's template, not with anything of ours.
    assert first.rendered.startswith(f"<s><|im_start|>system\n{system}<|im_end|></s>\n<|im_start|>user\n")
    assert first.rendered.endswith("<|im_start|>assistant\n")
    assert [m.role for m in probe.messages] == ["system", "user"]


def test_semcoder_models_keep_their_raw_prompts(serve, tmp_path: Path) -> None:
    server = serve("semcoder/semcoder_s_1030")
    result = repair(project(tmp_path), tmp_path / "runs.sqlite", "--model", "openai:semcoder/semcoder_s_1030",
                    "--max-iterations", "1")
    assert result.exit_code == 1 and json.loads(result.stdout)["status"] == "not_fixed"
    assert server.state.chats == []
    loop_prompts = server.state.prompts[1:]  # after the endpoint check's probe
    assert loop_prompts and loop_prompts[0].startswith("Debug and Refine the Code: You are given a a problem")


def test_agents_md_and_a_system_prompt_file(serve, tmp_path: Path) -> None:
    server = serve()
    rules = "Never change a function's signature.\n" + "Keep the style.\n" * 900  # past the cap: cut, with a note
    root = project(tmp_path, {"AGENTS.md": rules})
    system_file = tmp_path / "system.txt"
    system_file.write_text("You are the inventory team's careful bug fixer.")
    result = repair(root, tmp_path / "runs.sqlite", "--model", "openai:coder", "--system-prompt-file", str(system_file))
    assert result.exit_code == 0, result.stderr
    [note] = json.loads(result.stdout)["notes"]  # (--json: the notes are in the report)
    assert note.startswith(f"AGENTS.md has {len(rules)} characters: the system message carries its first")
    system = server.state.chats[-1].messages[0].content
    assert system.startswith("You are the inventory team's careful bug fixer.\n\n## Project instructions (AGENTS.md)"
                             "\n\nNever change a function's signature.\n")
    assert chat_prompts.REFINE_SYSTEM not in system
    assert "[AGENTS.md cut here: the first" in system and len(system) < chat_prompts.MAX_AGENTS_CHARS + 500


def test_a_system_prompt_needs_the_chat_dialect(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="--system-prompt-file replaces the chat dialect's system message"):
        parse({"model": "openai:semcoder/semcoder_s_1030", "system_prompt": "x"})
    assert parse({"model": "openai:semcoder/semcoder_s_1030", "system_prompt": "x", "dialect": "chat"})


# --- the endpoint checks, before any run starts -----------------------------------------------------------------------


def test_an_unknown_model_is_refused_before_the_run(serve, tmp_path: Path) -> None:
    serve("coder")
    db = tmp_path / "runs.sqlite"
    result = repair(project(tmp_path), db, "--model", "openai:Qwen/Qwen2.5-Coder-7B-Instruct")
    assert result.exit_code == 2
    assert "does not serve 'Qwen/Qwen2.5-Coder-7B-Instruct'; it serves: 'coder' (pass one of them: --model " \
           "openai:NAME)" in result.stderr
    assert json.loads(result.stdout)["status"] == "error" and runs_in(db) == 0


@pytest.mark.parametrize(("routes", "dialect", "advice"), [
    (frozenset({"chat"}), "semcoder", "has no /v1/completions route (404: Not Found), which --dialect semcoder needs; "
                                      "it answers on /v1/chat/completions: pass --dialect chat"),
    (frozenset({"completions"}), "chat", "has no /v1/chat/completions route (404: Not Found), which --dialect chat "
                                         "needs; it answers on /v1/completions: pass --dialect semcoder"),
], ids=["chat-only server", "completions-only server"])
def test_a_missing_route_names_the_dialect(serve, tmp_path: Path, routes, dialect: str, advice: str) -> None:
    serve(routes=routes)
    db = tmp_path / "runs.sqlite"
    result = repair(project(tmp_path), db, "--model", "openai:coder", "--dialect", dialect)
    assert result.exit_code == 2 and advice in result.stderr, result.stderr
    assert runs_in(db) == 0


def test_a_prompt_past_the_context_window_is_refused_before_the_run(serve, tmp_path: Path) -> None:
    serve(max_model_len=1200)  # the example's longest prompt is some 540 tokens here, its answer budget 578 at least
    db = tmp_path / "runs.sqlite"
    result = repair(project(tmp_path), db, "--model", "openai:coder", "--max-new-tokens", "1024")
    assert result.exit_code == 2
    assert re.search(r"Error: the prompt does not fit 'coder''s context window: \d+ prompt tokens \(the longest prompt "
                     r"this run is known to send\) \+ 1024 new tokens > max_model_len 1200 at http://\S+; show less "
                     r"context \(.*\) or lower --max-new-tokens", result.stderr), result.stderr
    assert runs_in(db) == 0
    fits = repair(project(tmp_path / "again"), db, "--model", "openai:coder", "--max-new-tokens", "64")
    assert fits.exit_code == 0, fits.stderr


# --- the chat prompts --------------------------------------------------------------------------------------------------

CODE = "def add(a, b):\n    return a - b"


@pytest.mark.parametrize(("mode", "shown"), [
    ("semcoder", None),
    ("trace", '### Execution Trace\n' + chat_prompts.TRACE_EXPLAINED + '\n```python\ndef add(a, b): # [INPUT] '
              '{"a": 1, "b": 2} [/INPUT]\n    return a - b # [OUTPUT] -1 [/OUTPUT]\n```'),
    ("blocks", "### Execution Blocks\n" + chat_prompts.BLOCKS_EXPLAINED + "\n```\n[CALL] add(1, 2)\n[BLOCK-0] add"),
])
def test_refine_chat_carries_what_the_raw_prompt_does(pool, mode: str, shown: str | None) -> None:
    model = ScriptedModel([["```python\ndef add(a, b):\n    return a + b\n```"]])
    [candidate] = refine_once("Add two numbers.", CODE, FailingTest(call="add(1, 2)", expected="3"), model, mode,
                              tracer=PoolTracer(pool), dialect="chat")
    assert candidate.code == "def add(a, b):\n    return a + b"
    [request] = model.requests
    system, user = request.messages or ()
    assert (system.role, system.content, user.role) == ("system", chat_prompts.REFINE_SYSTEM, "user")
    assert user.content.startswith("### Problem\nAdd two numbers.\n\n### Code\n```python\ndef add(a, b):\n"
                                   "    return a - b\n```\n\n### Failed Test\n```python\nretv = add(1, 2)\n"
                                   "assert retv == 3\n```\n\n")
    assert ("### Execution" in user.content) == (shown is not None)
    if shown:
        assert shown in user.content, user.content


def test_the_refine_chat_has_slots_for_the_edit_format_and_an_unapplied_answer() -> None:
    system, user = chat_prompts.refine_messages(
        "Add.", CODE, "retv = add(1, 2)\nassert retv == 3\n",
        edit_instruction="Answer with SEARCH/REPLACE blocks.", apply_error="the SEARCH text is not in the file",
        system="Be brief.", project_instructions="Use tabs.")
    assert system.content == "Be brief.\n\n## Project instructions (AGENTS.md)\n\nUse tabs."
    assert user.content.endswith("### Your Previous Answer\nYour previous answer could not be applied: the SEARCH text "
                                 "is not in the file\n\nAnswer with SEARCH/REPLACE blocks.")


def test_semcoder_dialect_prompts_stay_byte_for_byte() -> None:
    model = ScriptedModel([["..."]])
    refine_once("Add two numbers.", CODE, FailingTest(call="add(1, 2)", expected="3"), model)
    assert model.prompts == [refine_prompt("Add two numbers.", CODE, "retv = add(1, 2)\nassert retv == 3\n")]


def test_cruxeval_chats_ask_for_an_answer_the_parser_reads() -> None:
    from agent.parsing import cruxeval_prediction

    system, user = chat_prompts.cruxeval_output_messages("def f(s):\n    return s + 'a'", "'b'")
    assert system.content == chat_prompts.EXECUTION_SYSTEM
    assert user.content.endswith('```python\ndef f(s):\n    return s + "a"\nassert f("b") == ??\n```')
    assert "[ANSWER]" in user.content and "[/ANSWER]" in user.content
    answer = 'Executing f("b") appends "a".\n[ANSWER]\nassert f("b") == "ba"\n[/ANSWER]'
    assert cruxeval_prediction(answer, "output", finish_reason="stop") == "'ba'"
    _, backward = chat_prompts.cruxeval_input_messages("def f(x):\n    return x * 2", "4")
    assert backward.content.endswith("assert f(??) == 4\n```")
