"""`semcoder mcp --transport http`: the SDK's client over streamable HTTP on a loopback port, the bearer token, and
the refusal to bind beyond loopback without one."""

from __future__ import annotations

import subprocess
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_helpers import CALL_S, ROOT, SERVER, TOKEN, TRACED, HttpServer, server_env, structured


def call(url: str, *calls: tuple[str, dict[str, Any]], headers: dict[str, str] | None = None,
         mode: str = "auto") -> list[Any]:
    async def main() -> list[Any]:
        async with httpx2.AsyncClient(headers=headers or {}, timeout=CALL_S) as http:
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, read_timeout_seconds=CALL_S, mode=mode) as client:
                results: list[Any] = [(await client.list_tools()).tools, client.protocol_version]
                for name, arguments in calls:
                    results.append(await client.call_tool(name, arguments))
                return results

    return anyio.run(main)


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # the 2026-07-28 stateless protocol, and the handshake one
def test_tools_over_streamable_http(http_server, shared_root, mode):
    (shared_root / "stats.py").write_text(TRACED)
    tools, version, tests, traced, refused = call(
        http_server.url, ("run_tests", {"path": "inventory"}),
        ("trace", {"file": "stats.py", "call": "mean([4, 8])", "format": "semcoder"}),
        ("run_tests", {"path": "/etc"}), mode=mode)
    assert {t.name for t in tools} == {"run_python", "trace", "run_tests", "explain_failure", "repair"}
    assert (version >= "2026") == (mode == "auto"), version
    assert (structured(tests)["passed"], structured(tests)["failed"]) == (4, 1)
    assert '"total": 12' in structured(traced)["rendered"]
    assert refused.is_error and "outside the allowed roots" in refused.content[0].text


def test_bad_json_over_http_is_a_parse_error(http_server):
    """Over HTTP the SDK does answer a parse error (it does not over stdio: test_mcp_protocol_errors.py)."""
    answer = httpx.post(http_server.url, content=b"{not json", timeout=CALL_S,
                        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32700


def test_bearer_token_is_required_when_set(tmp_path):
    server = HttpServer(tmp_path / "server.log", "--allowed-root", str(tmp_path),
                        env={"SEMCODER_API_TOKEN": TOKEN}).start()
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = httpx.post(server.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                headers=headers, timeout=CALL_S)
            assert answer.status_code == 401, answer.text
        _, _, ran = call(server.url, ("run_python", {"code": "print('in')"}),
                         headers={"Authorization": f"Bearer {TOKEN}"})
        assert structured(ran)["stdout"] == "in\n"
    finally:
        server.stop()


def test_non_loopback_bind_needs_a_token(tmp_path):
    refused = subprocess.run([*SERVER, "--transport", "http", "--host", "0.0.0.0", "--allowed-root", str(tmp_path)],
                             cwd=ROOT, env=server_env(), capture_output=True, text=True, timeout=CALL_S)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "refusing to listen on 0.0.0.0 without a token: set SEMCODER_API_TOKEN" in refused.stderr


def test_registered_as_a_semcoder_command():
    """pyproject registers `semcoder mcp`; the entry point names a click command (the installed metadata may
    predate it, so this reads pyproject itself)."""
    import tomllib

    from agent.mcp_server import mcp_command

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["semcoder.commands"]["mcp"] == "agent.mcp_server:mcp_command"
    assert mcp_command.name == "mcp" and any(d.startswith("mcp>=2.3") for d in project["project"]["dependencies"])
    help_text = subprocess.run([*SERVER, "--help"], cwd=ROOT, env=server_env(), capture_output=True, text=True,
                               timeout=CALL_S).stdout
    assert "--transport [stdio|http]" in help_text and "--allowed-root" in help_text
