"""`repair` and the run resources, driven by the `mcp` SDK's client over real stdio: a whole repair of
examples/inventory with a progress notification per step, the diff answered and the project untouched, the run in
the one run store (the command line lists it; the resources show it), and a cancelled call cancelling its run."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp_helpers import CALL_S, ROOT, copy_inventory, server_env, structured

from agent.persistence import open_store

FIX = "+    return sorted(item for item, count in stock.items() if count <= threshold)"


def client_params(root, db) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "agent.mcp_server", "--allowed-root", str(root),
                                                               "--db", str(db)], env=server_env(), cwd=ROOT)


def test_repair_answers_the_diff_with_progress_and_writes_nothing(tmp_path):
    project, db = copy_inventory(tmp_path), tmp_path / "runs.sqlite"
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def main() -> tuple[Any, Any, Any]:
        async with Client(client_params(tmp_path, db), read_timeout_seconds=CALL_S) as client:
            result = await client.call_tool("repair", {"path": str(project)}, progress_callback=on_progress)
            listed = await client.read_resource("semcoder://runs")
            run_id = structured(result)["run_id"]
            record = await client.read_resource(f"semcoder://runs/{run_id}")
            return result, listed, record

    result, listed, record = anyio.run(main)
    out = structured(result)
    assert (out["status"], out["tests_passed"], out["tests_total"]) == ("fixed", 5, 5)
    assert FIX in out["diff"] and out["candidates_tested"] >= 1 and "plugin-free runner" in out["confirmation"]
    assert {p.name: p.read_bytes() for p in project.iterdir() if p.name != "__pycache__"} == before  # not written
    values = [value for value, _, _ in progress]
    assert values == sorted(values) and len(values) >= 5  # one per step, increasing
    messages = [message for _, _, message in progress]
    assert messages[0] == "started" and "ran the original's tests (best so far 4/5)" in messages[1]
    assert any("traced test_inventory.py::test_restock_at_threshold" in m for m in messages)
    assert messages[-1] == "fixed: 5/5 tests pass"
    [runs] = [json.loads(content.text) for content in listed.contents]
    assert [(r["run_id"], r["origin"], r["status"]) for r in runs] == [(out["run_id"], "mcp", "fixed")]
    [one] = [json.loads(content.text) for content in record.contents]
    assert one["diff"] == out["diff"] and one["origin"] == "mcp"
    assert [s["type"] for s in one["steps"]][:2] == ["queued", "started"] and one["steps"][-1]["type"] == "done"
    traced = next(s for s in one["steps"] if s.get("node") == "trace")
    assert traced["call"] == "restock_list({'apples': 3, 'bread': 10, 'milk': 5}, 5)"
    # one run store: the command line lists the agent's run
    cli = subprocess.run([sys.executable, "-c", "from agent.cli import main; main()", "runs", "--db", str(db),
                          "--json"], capture_output=True, text=True, cwd=ROOT, check=True)
    assert [json.loads(line)["origin"] for line in cli.stdout.splitlines()] == ["mcp"]


def test_a_cancelled_repair_call_cancels_its_run(tmp_path):
    root, db = tmp_path / "grades", tmp_path / "runs.sqlite"
    root.mkdir()
    (root / "grades.py").write_text("def grade(score):\n    if score > 90:\n        return 'A'\n"
                                    "    if score > 80:\n        return 'B'\n    return 'C'\n")
    (root / "test_grades.py").write_text("from grades import grade\n\n\ndef test_a():\n    assert grade(90) == 'A'\n"
                                         "\n\ndef test_b():\n    assert grade(80) == 'B'\n")

    async def main() -> None:
        async with Client(client_params(tmp_path, db), read_timeout_seconds=CALL_S) as client:
            seen = anyio.Event()

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                if message and "candidate" in message:
                    seen.set()

            async with anyio.create_task_group() as group:
                async def call() -> None:
                    await client.call_tool("repair", {"path": str(root), "max_iterations": 50,
                                                     "mutants_per_step": 1},
                                           progress_callback=on_progress)

                group.start_soon(call)
                await seen.wait()
                group.cancel_scope.cancel()  # the SDK sends notifications/cancelled for the call
            # the server goes on serving
            assert (await client.list_tools()).tools

    anyio.run(main)
    with open_store(db) as store:
        [row] = store.list()
        for _ in range(600):  # the run stops at its next step; give a loaded machine time
            if row.status != "running":
                break
            anyio.run(anyio.sleep, 0.1)
            [row] = store.list()
    assert (row.origin, row.status, row.stop_reason) == ("mcp", "cancelled", "cancelled by request")
    assert (root / "grades.py").read_text().count("> 90") == 1  # untouched
