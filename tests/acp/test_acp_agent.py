"""`semcoder acp` driven by the `agent-client-protocol` SDK's own client, as a subprocess over real stdio: a whole
repair of examples/inventory (permission granted -> the file is written through fs/write_text_file; rejected ->
untouched), cancel mid-run, sessions listed and reloaded from the run store (also a run the CLI started), a
model's monologue as thought chunks, and protocol errors answered per JSON-RPC without the process dying."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from acp import RequestError
from acp_helpers import ROOT, Editor, agent_command, connected, inventory, say

from agent.persistence import open_store

FIXED_LINE = "count <= threshold"
SEMCODER = [sys.executable, "-c", "from agent.cli import main; main()"]


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout=300))


def test_a_prompt_repairs_the_project_and_writes_through_the_editor_once_allowed(tmp_path):
    root, db, editor, transcript = inventory(tmp_path), tmp_path / "runs.sqlite", Editor("apply"), []

    async def session() -> tuple[str, Any]:
        async with connected(editor, db, transcript=transcript) as connection:
            new = await connection.new_session(cwd=str(root))
            return new.session_id, await connection.prompt(session_id=new.session_id,
                                                           prompt=say("fix the failing tests"))

    session_id, answer = run(session())
    print("\n".join(line[:400] for line in transcript))  # the ACP session as the SDK's client saw it (pytest -s)
    assert answer.stop_reason == "end_turn"
    kinds = editor.kinds(session_id)
    assert kinds[0] == "plan" and kinds[-1] == "agent_message_chunk" and "tool_call_update" in kinds
    [original, *_] = editor.tool_calls("execute")
    assert original.title == "Run the tests on the original code"
    assert original.content[0].content.text == "original: 4/5 passed" and original.status == "completed"
    [traced] = editor.tool_calls("read")
    text = traced.content[0].content.text
    # the failing call with the test module's STOCK in place, and the real states of the traced line
    assert "Failing call: restock_list({'apples': 3, 'bread': 10, 'milk': 5}, 5)" in text
    assert '[STATE-2] {"item": "milk", "count": 5} [/STATE-2][OUTPUT] ["apples"] [/OUTPUT]' in text
    assert (traced.locations[0].path, traced.locations[0].line) == (str(root / "inventory.py"), 6)
    candidates = [call for call in editor.tool_calls("edit") if call.title.startswith("Candidate patch")]
    assert candidates and all(c.status == "pending" and c.locations[0].path == str(root / "inventory.py")
                              for c in candidates)
    # each candidate as a diff of the file (old and new text), the way editors show an edit
    assert all(c.content[0].type == "diff" and c.content[0].path == str(root / "inventory.py") for c in candidates)
    assert any(FIXED_LINE in c.content[0].new_text and "count < threshold" in c.content[0].old_text
               for c in candidates)
    settled = {u.tool_call_id: u.status for _, u in editor.updates if u.session_update == "tool_call_update"}
    assert {c.tool_call_id for c in candidates} <= set(settled)
    # asked first, with the diff as old and new text; then written through the editor, and nothing else
    [(asked, options)] = editor.permissions
    assert options == ["apply", "discard"] and asked.kind == "edit"
    [diff] = asked.content
    assert diff.path == str(root / "inventory.py") and "count < threshold" in diff.old_text
    assert FIXED_LINE in diff.new_text
    assert editor.writes == [str(root / "inventory.py")] and editor.reads == [str(root / "inventory.py")]
    assert FIXED_LINE in (root / "inventory.py").read_text()
    messages = [u.content.text for _, u in editor.updates if u.session_update == "agent_message_chunk"]
    assert messages[0].startswith("fixed: 5/5 tests pass") and "Applied to" in messages[-1]
    # one run store: the command line lists the editor's run
    listed = subprocess.run([*SEMCODER, "runs", "--db", str(db), "--json"], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["origin"], row["status"], row["session"], row["target"]) == ("acp", "fixed", session_id, str(root))


@pytest.mark.parametrize("decision", ["discard", None])
def test_a_rejected_or_cancelled_permission_leaves_the_files_untouched(tmp_path, decision):
    root, db, editor = inventory(tmp_path), tmp_path / "runs.sqlite", Editor(decision)
    before = (root / "inventory.py").read_text()

    async def session() -> Any:
        async with connected(editor, db) as connection:
            new = await connection.new_session(cwd=str(root))
            return await connection.prompt(session_id=new.session_id, prompt=say("fix the failing tests"))

    assert run(session()).stop_reason == "end_turn"
    assert len(editor.permissions) == 1 and editor.writes == []
    assert (root / "inventory.py").read_text() == before
    [applied] = [u for _, u in editor.updates if u.session_update == "tool_call_update"
                 and u.tool_call_id.endswith("-apply")]
    assert applied.status == "failed" and applied.raw_output == {"applied": False}


def test_without_the_editors_fs_the_agent_writes_only_after_permission(tmp_path):
    root, db, editor = inventory(tmp_path), tmp_path / "runs.sqlite", Editor("apply", fs=False)

    async def session() -> Any:
        async with connected(editor, db) as connection:
            new = await connection.new_session(cwd=str(root))
            return await connection.prompt(session_id=new.session_id, prompt=say("fix the failing tests"))

    assert run(session()).stop_reason == "end_turn"
    assert len(editor.permissions) == 1 and editor.writes == [] and editor.reads == []
    assert FIXED_LINE in (root / "inventory.py").read_text()


def test_a_file_changed_during_the_run_is_not_overwritten(tmp_path):
    root, db = inventory(tmp_path), tmp_path / "runs.sqlite"
    editor = Editor("apply")

    async def edit_meanwhile(update: Any) -> None:  # the user edits the file while the run goes
        if update.session_update == "tool_call" and update.kind == "read":
            (root / "inventory.py").write_text((root / "inventory.py").read_text() + "\n# edited\n")

    editor.on_update = edit_meanwhile

    async def session() -> Any:
        async with connected(editor, db) as connection:
            new = await connection.new_session(cwd=str(root))
            return await connection.prompt(session_id=new.session_id, prompt=say("fix the failing tests"))

    assert run(session()).stop_reason == "end_turn"
    assert editor.writes == [] and (root / "inventory.py").read_text().endswith("# edited\n")
    messages = [u.content.text for _, u in editor.updates if u.session_update == "agent_message_chunk"]
    assert "changed since the run started" in messages[-1]


GRADES = "def grade(score):\n    if score > 90:\n        return 'A'\n    if score > 80:\n        return 'B'\n    return 'C'\n"
GRADE_TESTS = ("from grades import grade\n\n\ndef test_a():\n    assert grade(95) == 'A'\n\n\n"
               "def test_a_boundary():\n    assert grade(90) == 'A'\n\n\ndef test_b_boundary():\n"
               "    assert grade(80) == 'B'\n")


def test_cancel_stops_the_run_and_the_prompt_ends_cancelled(tmp_path):
    root = tmp_path / "grades"
    root.mkdir()
    (root / "grades.py").write_text(GRADES)
    (root / "test_grades.py").write_text(GRADE_TESTS)
    db, editor = tmp_path / "runs.sqlite", Editor("apply")

    async def session() -> tuple[str, Any]:
        async with connected(editor, db, "--mutants-per-step", "1", "--max-iterations", "60") as connection:
            new = await connection.new_session(cwd=str(root))

            async def cancel_at_first_candidate(update: Any) -> None:
                if update.session_update == "tool_call" and update.kind == "edit":
                    editor.on_update = None
                    await connection.cancel(session_id=new.session_id)

            editor.on_update = cancel_at_first_candidate
            return new.session_id, await connection.prompt(session_id=new.session_id, prompt=say("fix grades"))

    session_id, answer = run(session())
    assert answer.stop_reason == "cancelled"
    assert editor.permissions == [] and editor.writes == [] and (root / "grades.py").read_text() == GRADES
    with open_store(db) as store:
        [row] = store.list(session=session_id)
        assert (row.status, row.stop_reason) == ("cancelled", "cancelled by request")
        assert row.iterations < 60
        assert [e.type for e in store.events_after(row.run_id, 0)].count("done") == 1


def test_sessions_are_listed_and_reloaded_from_the_run_store_whoever_started_them(tmp_path):
    root, db = inventory(tmp_path), tmp_path / "runs.sqlite"
    first = Editor("discard")

    async def repair() -> str:
        async with connected(first, db) as connection:
            new = await connection.new_session(cwd=str(root))
            await connection.prompt(session_id=new.session_id, prompt=say("fix test_inventory.py please"))
            return new.session_id

    session_id = run(repair())
    other = tmp_path / "other"
    other.mkdir()
    cli_root = inventory(other)  # a run the command line started, on another copy
    done = subprocess.run([*SEMCODER, "repair", str(cli_root), "--db", str(db), "--json"], capture_output=True,
                          text=True, cwd=ROOT)
    cli_run = json.loads(done.stdout)["run_id"]

    second = Editor()

    async def reopen() -> tuple[Any, Any, Any]:
        async with connected(second, db) as connection:
            everything = await connection.list_sessions()
            mine = await connection.list_sessions(cwd=str(root))
            await connection.load_session(cwd=str(root), session_id=session_id)
            await connection.load_session(cwd=str(cli_root), session_id=cli_run)
            return everything, mine, None

    everything, mine, _ = run(reopen())
    assert {s.session_id for s in everything.sessions} == {session_id, cli_run}
    assert [s.session_id for s in mine.sessions] == [session_id] and mine.sessions[0].cwd == str(root)
    replayed = [u for s, u in second.updates if s == session_id]
    assert replayed[0].session_update == "user_message_chunk"
    assert replayed[0].content.text == "fix test_inventory.py please"
    live_calls = [u.tool_call_id for s, u in first.updates if u.session_update == "tool_call"
                  and not u.tool_call_id.endswith("-apply")]
    assert [u.tool_call_id for u in replayed if u.session_update == "tool_call"] == live_calls
    from_cli = [u for s, u in second.updates if s == cli_run]
    assert from_cli[0].content.text.startswith("semcoder repair ") and "(from cli)" in from_cli[0].content.text
    assert from_cli[-1].content.text.startswith("fixed: 5/5 tests pass")


def test_the_model_reasoning_streams_as_thought_chunks(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "models"))
    from openai_test_server import OpenAITestServer

    from agent.models import Completion, GenerationRequest, GenerationResult, Usage
    from training.tiny_model import PRESETS, build_tokenizer

    reasoning = "The trace shows milk with count 5 == threshold left out: `<` must be `<=`."
    fixed = ('def restock_list(stock: dict[str, int], threshold: int) -> list[str]:\n'
             '    """Items whose count is at or below the threshold, sorted by name."""\n'
             '    return sorted(item for item, count in stock.items() if count <= threshold)\n')

    class Fixer:
        async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
            return [GenerationResult(completions=[Completion(text=f"{reasoning}\n\n```python\n{fixed}```\n",
                                                             finish_reason="stop")] * r.params.n,
                                     usage=Usage(prompt_tokens=10, completion_tokens=10)) for r in requests]

        async def aclose(self) -> None:
            return None

    server = OpenAITestServer(Fixer(), "coder", tokenizer=build_tokenizer(PRESETS["test"])).start()
    root, db, editor = inventory(tmp_path), tmp_path / "runs.sqlite", Editor("apply")

    async def session() -> Any:
        async with connected(editor, db, "--model", "openai:coder", "--dialect", "chat", "--feedback", "trace",
                             "--samples", "1", env={"SEMCODER_MODEL_URL": server.url + "/v1"}) as connection:
            new = await connection.new_session(cwd=str(root))
            model = next(o for o in new.config_options if o.id == "model")
            # the default, and what the model server serves
            assert model.current_value == "openai:coder" and [c.value for c in model.options] == ["none", "openai:coder"]
            await connection.set_config_option(config_id="patcher", session_id=new.session_id, value="model")
            return await connection.prompt(session_id=new.session_id, prompt=say("fix the failing tests"))

    try:
        assert run(session()).stop_reason == "end_turn"
    finally:
        server.stop()
    thoughts = [u.content.text for _, u in editor.updates if u.session_update == "agent_thought_chunk"]
    assert thoughts and thoughts[0].startswith(reasoning)
    plan = [u for _, u in editor.updates if u.session_update == "plan"][-1]
    assert any("monologue" in entry.content for entry in plan.entries)
    assert FIXED_LINE in (root / "inventory.py").read_text()


def test_protocol_errors_are_answered_and_the_agent_keeps_serving(tmp_path):
    command, argv = agent_command(tmp_path / "runs.sqlite")
    lines = [b"{not json\n", b"[1, 2]\n", b'{"jsonrpc": "2.0", "id": 1, "method": "no/such_method"}\n',
             b'{"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": 5}}\n',
             b'{"jsonrpc": "2.0", "id": 3, "method": "session/prompt", "params": {"sessionId": "nope", '
             b'"prompt": []}}\n',
             b'{"jsonrpc": "2.0", "id": 4, "method": "session/new", "params": {"cwd": "relative/dir"}}\n',
             b'{"jsonrpc": "2.0", "id": 5, "method": "initialize", "params": {"protocolVersion": 1}}\n']
    process = subprocess.Popen([command, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, cwd=ROOT, env={"PYTHONPATH": str(ROOT),
                                                                         "HOME": str(tmp_path)})
    assert process.stdin is not None and process.stdout is not None
    replies = []
    try:
        for line in lines:
            process.stdin.write(line)
            process.stdin.flush()
            replies.append(json.loads(process.stdout.readline()))
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    codes = [reply.get("error", {}).get("code") for reply in replies]
    assert codes == [-32700, -32600, -32601, -32602, -32602, -32602, None], replies
    assert [reply["id"] for reply in replies] == [None, None, 1, 2, 3, 4, 5]
    assert replies[-1]["result"]["agentInfo"]["name"] == "semcoder"
    assert process.returncode == 0  # stdin closed: a clean exit


def test_bad_settings_fail_before_an_editor_connects(tmp_path):
    command, argv = agent_command(tmp_path / "runs.sqlite", "--max-iterations", "100000")
    done = subprocess.run([command, *argv], capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                          env={"PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    assert done.returncode == 1 and done.stdout == "" and "--max-iterations" in done.stderr


def test_request_error_is_the_sdks():
    assert RequestError.invalid_params().code == -32602  # the codes the agent answers with are the SDK's own


def test_an_editor_that_goes_away_mid_run_leaves_it_cancelled_and_the_agent_exits(tmp_path):
    root = tmp_path / "grades"
    root.mkdir()
    (root / "grades.py").write_text(GRADES)
    (root / "test_grades.py").write_text(GRADE_TESTS)
    db = tmp_path / "runs.sqlite"
    command, argv = agent_command(db, "--mutants-per-step", "1", "--max-iterations", "60")
    process = subprocess.Popen([command, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "HOME": str(tmp_path)})
    assert process.stdin is not None and process.stdout is not None

    def send(message: dict[str, Any]) -> None:
        process.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        process.stdin.flush()

    send({"id": 0, "method": "initialize", "params": {"protocolVersion": 1}})
    send({"id": 1, "method": "session/new", "params": {"cwd": str(root), "mcpServers": []}})
    replies = [json.loads(process.stdout.readline()) for _ in range(2)]
    session_id = replies[1]["result"]["sessionId"]
    send({"id": 2, "method": "session/prompt", "params": {"sessionId": session_id,
                                                           "prompt": [{"type": "text", "text": "fix it"}]}})
    while True:  # until the first candidate: the run is mid-way
        update = json.loads(process.stdout.readline())["params"]["update"]
        if update.get("sessionUpdate") == "tool_call" and update.get("kind") == "edit":
            break
    process.stdin.close()  # the editor quits
    assert process.wait(timeout=120) == 0
    with open_store(db) as store:
        [row] = store.list(session=session_id)
    assert row.status == "cancelled" and row.iterations < 60
