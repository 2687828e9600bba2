"""A real `semcoder mcp` (python -m agent.mcp_server: no installed entry point needed) over stdio or HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "examples" / "inventory"
SERVER = [sys.executable, "-m", "agent.mcp_server"]
TOKEN = "mcp-test-token-0123456789"
# Generous: the CI machine is loaded, and nothing here measures speed.
STARTUP_S = 120
CALL_S = 300

TRACED = "def mean(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total / len(xs)\n"


# The servers' run store (and any cache) goes here, never into the user's ~/.cache.
CACHE = tempfile.mkdtemp(prefix="semcoder-mcp-tests-")


def server_env(**extra: str) -> dict[str, str]:
    """This checkout first on the path (the server imports it, not another install); no inherited MCP settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEMCODER_")}
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]),
            "XDG_CACHE_HOME": CACHE, **extra}


def copy_inventory(into: Path) -> Path:
    project = into / "inventory"
    shutil.copytree(INVENTORY, project)
    return project


def structured(result: Any) -> dict[str, Any]:
    """A tool result's structured content, which must match its text content (hosts that read only text)."""
    assert not result.is_error, result.content
    data = result.structured_content
    assert json.loads(result.content[0].text) == data
    return data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HttpServer:
    """`semcoder mcp --transport http` on a free loopback port; `start()` waits until it answers."""

    def __init__(self, log: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.log = log
        self.args = args
        self.env = server_env(**(env or {}))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> HttpServer:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([*SERVER, "--transport", "http", "--port", str(self.port), *self.args],
                                            cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"semcoder mcp exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                httpx.get(self.url, timeout=5)  # any HTTP answer (405, 401, 406) means it is serving
                return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"semcoder mcp did not answer in {STARTUP_S}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
