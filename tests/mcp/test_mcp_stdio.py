"""`semcoder mcp` over real stdio, driven by the `mcp` SDK's own client: every tool on examples/inventory and on a
small traced function, the allowed-roots rule, the output cap."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp_helpers import CALL_S, ROOT, TRACED, copy_inventory, server_env, structured

TOOLS = {"run_python", "trace", "run_tests", "explain_failure", "repair"}
READ_ONLY = TOOLS - {"repair"}


def with_client(root: Path, body: Callable[[Client], Awaitable[Any]], *args: str) -> Any:
    """Starts `python -m agent.mcp_server --allowed-root ROOT` as the host would and runs `body` on a session."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "agent.mcp_server", "--allowed-root",
                                                                 str(root), *args], env=server_env(), cwd=ROOT)

    async def main() -> Any:
        async with Client(params, read_timeout_seconds=CALL_S) as client:
            return await body(client)

    return anyio.run(main)


def test_lists_the_tools_with_schemas(tmp_path):
    async def body(client: Client) -> Any:
        return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in with_client(tmp_path, body)}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and tool.output_schema and tool.input_schema["type"] == "object"
        assert tool.annotations.read_only_hint is (tool.name in READ_ONLY)
        assert tool.annotations.destructive_hint is False  # nothing writes to the caller's files
    assert tools["trace"].input_schema["properties"]["format"]["enum"] == ["json", "semcoder", "blocks", "monologue", "cwm"]
    assert tools["run_tests"].input_schema["required"] == ["path"]


def test_every_tool_on_inventory(tmp_path):
    project = copy_inventory(tmp_path)
    before = {p.name: p.read_bytes() for p in project.iterdir()}

    async def body(client: Client) -> dict[str, Any]:
        return {
            "tests": structured(await client.call_tool("run_tests", {"path": str(project)})),
            "one_file": structured(await client.call_tool("run_tests", {"path": "inventory/test_inventory.py",
                                                                        "select": ["-k", "restock"]})),
            "explain": structured(await client.call_tool("explain_failure", {"path": str(project)})),
            "explain_named": structured(await client.call_tool("explain_failure", {
                "path": str(project), "test_id": "test_inventory.py::test_sell", "format": "blocks"})),
            "trace": structured(await client.call_tool("trace", {
                "file": str(project / "inventory.py"), "call": "restock_list({'apples': 3, 'milk': 5}, 5)",
                "format": "semcoder"})),
            "run": structured(await client.call_tool("run_python", {
                "code": "import inventory\n", "files": {"inventory.py": (project / "inventory.py").read_text()}})),
        }

    out = with_client(tmp_path, body)
    tests = out["tests"]
    assert (tests["passed"], tests["failed"], tests["errors"], tests["problem"]) == (4, 1, 0, "")
    assert tests["project"] == str(project.resolve())
    [failed] = [t for t in tests["tests"] if t["outcome"] == "failed"]
    assert failed["id"] == "test_inventory.py::test_restock_at_threshold"
    assert "assert ['apples'] == ['apples', 'milk']" in failed["message"] and failed["line"] == 12
    assert all(t["duration_s"] >= 0 for t in tests["tests"])

    one = out["one_file"]  # a relative path: under the first allowed root; the project is the file's directory
    assert one["project"] == str(project.resolve()) and one["selection"] == ["test_inventory.py", "-k", "restock"]
    assert sorted(t["id"].split("::")[1] for t in one["tests"]) == ["test_restock_at_threshold",
                                                                    "test_restock_below_threshold"]

    explain = out["explain"]
    assert explain["test_id"] == "test_inventory.py::test_restock_at_threshold"
    assert (explain["focus_file"], explain["focus_function"]) == ("inventory.py", "restock_list")
    assert explain["suspects"][0] == {"file": "inventory.py", "function": "restock_list", "score": 0.7071}
    assert explain["suspect_lines"][0]["line"] == 6
    # The test module's STOCK is a literal: the call carries it, so it runs in the module's namespace.
    assert explain["failed_test"] == ("retv = restock_list({'apples': 3, 'bread': 10, 'milk': 5}, 5)\n"
                                      "assert retv == ['apples', 'milk']\n")
    assert (explain["passed"], explain["total"], explain["trace_format"]) == (4, 5, "semcoder")
    assert '[STATE-2] {"item": "milk", "count": 5} [/STATE-2][OUTPUT] ["apples"] [/OUTPUT]' in explain["trace"]
    assert explain["trace_exception"] is None
    named = out["explain_named"]
    assert (named["test_id"], named["outcome"], named["trace"]) == ("test_inventory.py::test_sell", "passed", "")

    trace = out["trace"]
    assert trace["return_repr"] == "['apples']" and trace["exception"] is None
    assert "count < threshold" in trace["rendered"] and '[OUTPUT] ["apples"] [/OUTPUT]' in trace["rendered"]
    assert out["run"]["status"] == "ok" and out["run"]["exit_code"] == 0
    assert {p.name: p.read_bytes() for p in project.iterdir() if p.name != "__pycache__"} == before


def test_trace_values_in_json_and_semcoder(tmp_path):
    """A traced value (total = 6 after the loop) appears in both renderings. The request and response are written
    to $SEMCODER_MCP_TRANSCRIPT (or printed with -s) as the client saw them."""
    (tmp_path / "stats.py").write_text(TRACED)
    requests = [{"file": "stats.py", "call": "mean([1, 2, 3])", "format": fmt} for fmt in ("json", "semcoder")]

    async def body(client: Client) -> list[Any]:
        return [await client.call_tool("trace", request) for request in requests]

    results = with_client(tmp_path, body)
    as_json, semcoder = (structured(r) for r in results)
    rendered = json.loads(as_json["rendered"])
    assert rendered["return_repr"] == "2.0" and as_json["return_repr"] == "2.0"
    totals = [e["locals"]["total"] for e in rendered["events"] if "total" in e["locals"]]
    assert totals[-1] == "6" and "1" in totals and "3" in totals
    assert {e["event"] for e in rendered["events"]} == {"call", "line", "return"}
    assert '"total": 6' in semcoder["rendered"] and "[OUTPUT] 2.0 [/OUTPUT]" in semcoder["rendered"]
    transcript = "\n".join(
        f">>> tools/call trace {json.dumps(request)}\n<<< isError={result.is_error} structuredContent="
        f"{json.dumps(result.structured_content, indent=2)}" for request, result in zip(requests, results, strict=True))
    print(transcript)
    if os.environ.get("SEMCODER_MCP_TRANSCRIPT"):
        Path(os.environ["SEMCODER_MCP_TRANSCRIPT"]).write_text(transcript + "\n")


def test_paths_outside_the_allowed_roots_are_refused(tmp_path):
    root = tmp_path / "root"
    project = copy_inventory(root)
    outside = copy_inventory(tmp_path / "elsewhere")
    (project / "escape").symlink_to(outside)  # inside by name, outside once resolved

    async def body(client: Client) -> list[Any]:
        return [await client.call_tool("run_tests", {"path": str(outside)}),
                await client.call_tool("trace", {"file": "/etc/passwd", "call": "1"}),
                await client.call_tool("explain_failure", {"path": str(project / "escape")}),
                await client.call_tool("run_tests", {"path": "inventory/../../elsewhere/inventory"}),
                await client.call_tool("run_tests", {"path": str(root / "missing")}),
                await client.call_tool("trace", {"call": "f()"}),  # neither file nor code
                await client.call_tool("run_tests", {"path": 3}),  # wrong type: the SDK's validation
                await client.call_tool("run_tests", {"path": str(project)})]  # and it still serves

    *refused, fine = with_client(root, body)
    assert all(r.is_error for r in refused)
    texts = [r.content[0].text for r in refused]
    assert "outside the allowed roots" in texts[0] and str(outside) in texts[0]
    assert "/etc/passwd is outside the allowed roots" in texts[1]
    assert f"resolves to {outside}" in texts[2]
    assert "outside the allowed roots" in texts[3]
    assert "no such file or directory" in texts[4]
    assert "give exactly one of `file`" in texts[5]
    assert "validation error" in texts[6] and "path" in texts[6]
    assert structured(fine)["failed"] == 1


def test_output_is_capped_with_a_note(tmp_path):
    async def body(client: Client) -> list[Any]:
        return [await client.call_tool("run_python", {"code": "print('x' * 50_000)\nraise SystemExit('bye')"}),
                await client.call_tool("trace", {"code": "def f(n):\n    s = 0\n    for i in range(n):\n"
                                                 "        s += i\n    return s\n", "call": "f(3000)"})]

    ran, traced = (structured(r) for r in with_client(tmp_path, body, "--max-output-chars", "5000"))
    assert ran["status"] == "error" and ran["exit_code"] == 1 and ran["stderr"] == "bye\n"
    assert len(ran["stdout"]) == 5000 and "characters cut" in ran["stdout"] and ran["stdout"].startswith("xxx")
    assert ran["notes"] == ["stdout cut to 5000 of 50001 characters (the middle is left out; the server's cap is "
                            "--max-output-chars / SEMCODER_MAX_OUTPUT_CHARS)"]
    assert len(traced["rendered"]) <= 5000 and traced["return_repr"] == str(sum(range(3000)))
    rendered = json.loads(traced["rendered"])  # still valid JSON: whole events dropped from the end
    assert rendered["truncated"] is True and 0 < len(rendered["events"]) < traced["events"]
    assert "json rendering cut to its first" in traced["notes"][0]


def test_untrusted_code_failing_is_data(tmp_path):
    async def body(client: Client) -> list[Any]:
        return [await client.call_tool("run_python", {"code": "while True: pass", "timeout_s": 1}),
                await client.call_tool("run_python", {"code": "import os; os.kill(os.getpid(), 9)"}),
                await client.call_tool("run_python", {"code": "print(input()[::-1])", "stdin": "abc\n"}),
                await client.call_tool("trace", {"code": "def f():\n    return 1 / 0\n", "call": "f()"})]

    timed_out, killed, echoed, raised = (structured(r) for r in with_client(tmp_path, body))
    assert timed_out["status"] == "timeout"
    assert killed["status"] == "error" and killed["exit_code"] == -9
    assert echoed["stdout"] == "cba\n" and echoed["isolation"] in ("full", "partial")
    assert raised["exception"] == "ZeroDivisionError: division by zero" and raised["return_repr"] is None
