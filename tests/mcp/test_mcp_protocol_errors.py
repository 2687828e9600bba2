"""JSON-RPC errors over real stdio, bytes written by hand: each answered per JSON-RPC 2.0, and the server keeps
serving.

mcp 2.3.0 answers an unknown method with -32601 and wrong params with -32602 itself. A line that is not JSON, or not
a JSON-RPC message at all (params that are not an object, a batch array, an id alone), it drops unanswered; the
guard in front of it (agent/_stdio.guarded_stdio) answers -32700 (parse error) or -32600 (invalid request), with the
message's id where it has one. Each bad line is followed by a valid request whose answer must arrive right after
the errors."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from mcp_helpers import CALL_S, ROOT, SERVER, server_env

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602


class RawStdio:
    """The server's stdin and stdout as byte lines; a thread reads stdout so no read blocks the test forever."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def send(self, raw: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(raw + b"\n")
        self.process.stdin.flush()

    def request(self, id_: int, method: str, params: Any = None) -> None:
        message = {"jsonrpc": "2.0", "id": id_, "method": method, **({"params": params} if params is not None else {})}
        self.send(json.dumps(message).encode())

    def until(self, id_: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The answer to request `id_`, and every message that arrived before it (each must be JSON on one line:
        nothing else may reach stdout)."""
        before = []
        while True:
            message = json.loads(self.lines.get(timeout=CALL_S))
            if message.get("id") == id_:
                return message, before
            before.append(message)


@pytest.fixture
def raw(tmp_path) -> Iterator[RawStdio]:
    process = subprocess.Popen([*SERVER, "--allowed-root", str(tmp_path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=(tmp_path / "stderr.log").open("wb"), cwd=ROOT,
                               env=server_env())
    stdio = RawStdio(process)
    stdio.request(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "raw-bytes", "version": "0"}})
    answer, before = stdio.until(1)
    assert before == [] and answer["result"]["serverInfo"]["name"] == "semcoder"
    stdio.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    yield stdio
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=CALL_S) == 0  # stdin closed: a clean exit, not a crash


def errors(before: list[dict[str, Any]]) -> list[tuple[Any, int]]:
    """(id, code) of the messages that came before the valid request's answer."""
    return [(message["id"], message["error"]["code"]) for message in before]


def test_unknown_method_is_method_not_found(raw):
    raw.request(2, "no/such/method")
    answer, before = raw.until(2)
    assert before == [] and answer["error"]["code"] == METHOD_NOT_FOUND
    raw.request(3, "tools/list")
    answer, _ = raw.until(3)
    assert {t["name"] for t in answer["result"]["tools"]} == {"run_python", "trace", "run_tests", "explain_failure", "repair"}


def test_wrong_params_are_invalid_params(raw):
    raw.request(2, "tools/call", {"arguments": {}})  # no tool name
    answer, _ = raw.until(2)
    assert answer["error"]["code"] == INVALID_PARAMS
    raw.request(3, "tools/list", {"cursor": 5})  # a cursor is a string
    answer, _ = raw.until(3)
    assert answer["error"]["code"] == INVALID_PARAMS
    # Arguments that fail the tool's own schema are a tool error (isError), per MCP, not a protocol error.
    raw.request(4, "tools/call", {"name": "run_python", "arguments": {"code": 42}})
    answer, _ = raw.until(4)
    assert answer["result"]["isError"] is True and "validation error" in answer["result"]["content"][0]["text"]
    raw.request(5, "tools/call", {"name": "run_python", "arguments": {"code": "print(6 * 7)"}})
    answer, _ = raw.until(5)
    assert answer["result"]["structuredContent"]["stdout"] == "42\n"


def test_bad_json_then_the_server_still_answers(raw):
    raw.send(b'{"jsonrpc": "2.0", "id": 2, "method": "tools/list"')  # cut short
    raw.send(b"\xff\xfe not even utf-8")
    raw.request(3, "tools/list")
    answer, before = raw.until(3)
    assert errors(before) == [(None, PARSE_ERROR), (None, PARSE_ERROR)]
    assert len(answer["result"]["tools"]) == 5


def test_invalid_requests_then_the_server_still_answers(raw):
    raw.send(b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":"not an object"}')
    raw.send(b"[1, 2]")  # a batch: removed from MCP in 2025-06-18
    raw.send(b'{"jsonrpc":"2.0","id":4}')  # neither a request nor a response
    raw.request(5, "tools/call", {"name": "trace", "arguments": {"code": "def f(x):\n    return x * 2\n",
                                                                "call": "f(21)"}})
    answer, before = raw.until(5)
    assert errors(before) == [(2, INVALID_REQUEST), (None, INVALID_REQUEST), (4, INVALID_REQUEST)]
    assert answer["result"]["structuredContent"]["return_repr"] == "42"
