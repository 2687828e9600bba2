"""The official ACP TypeScript SDK's client side (tests/clients/acp_client.mjs, a second real client written by
nobody here, which checks every message against the protocol's schema) drives a whole repair through
`semcoder acp`. CI installs it (`npm ci --prefix tests/clients`) and requires it (SEMCODER_REQUIRE_NODE_CLIENTS)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from acp_helpers import ROOT, inventory

CLIENTS = ROOT / "tests" / "clients"
MISSING = ("node" if shutil.which("node") is None else
           "tests/clients/node_modules (npm ci --prefix tests/clients)"
           if not (CLIENTS / "node_modules" / "@agentclientprotocol" / "sdk").is_dir() else None)
if MISSING and os.environ.get("SEMCODER_REQUIRE_NODE_CLIENTS"):
    raise RuntimeError(f"SEMCODER_REQUIRE_NODE_CLIENTS is set but {MISSING} is missing")
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"needs {MISSING}")


@pytest.mark.parametrize("decision", ["apply", "discard"])
def test_the_typescript_sdk_client_drives_a_whole_repair(tmp_path, decision):
    root = inventory(tmp_path)
    before = (root / "inventory.py").read_text()
    done = subprocess.run(
        ["node", str(CLIENTS / "acp_client.mjs"), "--cwd", str(root), "--decision", decision, "--",
         sys.executable, "-c", "from agent.cli import main; main()", "acp", "--db", str(tmp_path / "runs.sqlite")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert (seen["stopReason"], seen["agentInfo"]["name"]) == ("end_turn", "semcoder")
    kinds = [u["sessionUpdate"] for u in seen["updates"]]
    assert {"plan", "tool_call", "tool_call_update", "agent_message_chunk"} <= set(kinds)
    traced = next(u for u in seen["updates"] if u.get("kind") == "read")
    assert "[STATE-" in traced["content"][0]["content"]["text"]
    [asked] = seen["permissions"]
    assert asked["options"] == ["apply", "discard"]
    assert asked["toolCall"]["content"][0]["type"] == "diff"
    if decision == "apply":
        assert seen["writes"] == [str(root / "inventory.py")]
        assert "count <= threshold" in (root / "inventory.py").read_text()
    else:
        assert seen["writes"] == [] and (root / "inventory.py").read_text() == before
