"""A real `semcoder serve` on a free loopback port (a subprocess), and the tasks the API tests repair."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

GRADES = "def grade(score):\n    if score > 90:\n        return 'A'\n    if score > 80:\n        return 'B'\n    return 'C'\n"
GRADE_TESTS = """from solution import grade


def test_a():
    assert grade(95) == 'A'


def test_a_boundary():
    assert grade(90) == 'A'


def test_b_boundary():
    assert grade(80) == 'B'


def test_c():
    assert grade(10) == 'C'
"""
GRADE_FIX = "    if score >= 90:\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """One `semcoder serve` process; `start()` waits for /health, `kill()` is SIGKILL of its whole group."""

    def __init__(self, db: Path, *, port: int | None = None, env: dict[str, str] | None = None,
                 db_url: str | None = None, args: Sequence[str] = ()) -> None:
        self.db = db
        self.args = list(args)  # more `semcoder serve` options
        self.db_url = db_url or f"sqlite:///{db}"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = db.with_suffix(f".{self.port}.log")
        self._env = {**os.environ, "SEMCODER_API_TOKEN": TOKEN, "SEMCODER_SANDBOX_WORKERS": "2", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90) -> Server:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from agent.cli import main; main()", "serve", "--port", str(self.port),
                 "--db-url", self.db_url, "--log-level", "warning", *self.args],
                cwd=ROOT, env=self._env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"semcoder serve exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"semcoder serve did not answer /health in {timeout_s}s:\n{self.log.read_text()}")

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def wait_for(client: httpx.Client, run_id: str, statuses: set[str], timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = client.get(f"/v1/repairs/{run_id}", headers=AUTH).json()
        if body["status"] in statuses:
            return body
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not reach {statuses} in {timeout_s}s: {body}")


def read_events(client: httpx.Client, run_id: str, last_event_id: int | None = None) -> list[dict[str, Any]]:
    """The SSE stream parsed into events, read until the server ends it (after `done`)."""
    headers = {**AUTH, **({"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {})}
    events, current = [], {}
    with client.stream("GET", f"/v1/repairs/{run_id}/events", headers=headers, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if "id" in current:
                    events.append(current)
                current = {}
            elif line.startswith(("id: ", "event: ", "data: ")):
                key, _, value = line.partition(": ")
                current[key] = value
    return [{"id": int(e["id"]), "type": e["event"], "data": json.loads(e["data"])} for e in events]


def grade_request(**overrides: Any) -> dict[str, Any]:
    return {"code": GRADES, "tests": GRADE_TESTS, "model": "none", **overrides}
