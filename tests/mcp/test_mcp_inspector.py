"""The MCP Inspector's CLI (the reference host tooling, Node) against `semcoder mcp` over stdio.

It runs when the Inspector is installed, never downloading it here: $MCP_INSPECTOR (a path to its `mcp-inspector`
binary), else tests/clients/node_modules/.bin/mcp-inspector (`npm ci --prefix tests/clients`, pinned there with the
ACP client; .ci/run installs it and sets SEMCODER_REQUIRE_NODE_CLIENTS, so CI never skips it), else one on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from mcp_helpers import CALL_S, ROOT, server_env

LOCAL = ROOT / "tests" / "clients" / "node_modules" / ".bin" / "mcp-inspector"
INSPECTOR = os.environ.get("MCP_INSPECTOR") or (str(LOCAL) if LOCAL.exists() else shutil.which("mcp-inspector"))
MISSING = INSPECTOR is None or shutil.which("node") is None
if MISSING and os.environ.get("SEMCODER_REQUIRE_NODE_CLIENTS"):
    raise RuntimeError("SEMCODER_REQUIRE_NODE_CLIENTS is set but the MCP Inspector CLI or node is missing "
                       "(npm ci --prefix tests/clients)")

pytestmark = pytest.mark.skipif(MISSING, reason="MCP Inspector CLI not installed (npm ci --prefix tests/clients, or "
                                "set MCP_INSPECTOR to its mcp-inspector binary)")


def inspector(tmp_path, *method: str) -> dict:
    # The Inspector starts the server with the variables it is given (-e), so PYTHONPATH goes through `env`.
    env = server_env()
    command = [INSPECTOR, "--cli", "env", f"PYTHONPATH={env['PYTHONPATH']}", f"XDG_CACHE_HOME={env['XDG_CACHE_HOME']}",
               sys.executable, "-m",
               "agent.mcp_server", "--allowed-root", str(tmp_path), *method]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=CALL_S)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_inspector_lists_the_tools(tmp_path):
    listed = inspector(tmp_path, "--method", "tools/list")
    assert {t["name"] for t in listed["tools"]} == {"run_python", "trace", "run_tests", "explain_failure", "repair"}
    assert all(t["outputSchema"]["type"] == "object" for t in listed["tools"])


def test_inspector_calls_trace(tmp_path):
    result = inspector(tmp_path, "--method", "tools/call", "--tool-name", "trace",
                       "--tool-arg", "code=def f(x):\n    y = x + 1\n    return y\n", "--tool-arg", "call=f(41)",
                       "--tool-arg", "format=semcoder")
    assert result["isError"] is False
    assert '"y": 42' in result["structuredContent"]["rendered"]
