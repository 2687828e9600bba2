"""JSON-RPC over this process's stdin and stdout, for the protocol servers an editor or an agent starts (ACP, MCP).

Two things the protocol SDKs leave to their user:
- stdout must carry protocol messages only. The process runs sandboxes, a model client and libraries that may
  print; so the protocol gets a private duplicate of fd 1, and fd 1 itself is pointed at stderr, where a stray
  print (ours, a library's, a child's) lands harmlessly.
- a line that is not JSON, or not a JSON-RPC message, is answered per JSON-RPC 2.0 (-32700 parse error, -32600
  invalid request) instead of being dropped silently (both SDKs log and drop it); only well-formed messages reach
  the SDK.

Two ways in: `protocol_streams` gives asyncio streams to an SDK that takes them (ACP); `guarded_stdio` puts the
same guard in front of an SDK that serves the process's own fd 0 and fd 1 (MCP's stdio transport, which diverts
fd 1 to stderr itself while it serves).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

PARSE_ERROR, INVALID_REQUEST = -32700, -32600
_END = b"\x00semcoder: end of the protocol stream\n"  # never a JSON line


def take_stdout() -> int:
    """A private duplicate of fd 1 for the protocol; fd 1 (and sys.stdout) now write to stderr."""
    sys.stdout.flush()
    protocol = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


def problem(line: bytes) -> dict[str, Any] | None:
    """The JSON-RPC error response a line deserves, or None if it is a message to pass on."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(PARSE_ERROR, "Parse error", str(exc))
    if not isinstance(message, dict):
        # (a batch is JSON-RPC 2.0 but neither ACP nor MCP's stdio transport uses one)
        return _error(INVALID_REQUEST, "Invalid Request", "a message must be a JSON object")
    method, request_id = message.get("method"), message.get("id")
    request_id = request_id if isinstance(request_id, str | int) and not isinstance(request_id, bool) else None
    if method is None:
        is_response = "id" in message and ("result" in message) != ("error" in message)
        well_formed = message.get("jsonrpc") == "2.0" and is_response
    else:
        well_formed = message.get("jsonrpc") == "2.0" and isinstance(method, str) and \
            isinstance(message.get("params", {}), dict | list)
    if not well_formed:
        return _error(INVALID_REQUEST, "Invalid Request", "not a JSON-RPC 2.0 request, notification or response "
                      "(jsonrpc \"2.0\", a string method, params an object or array; a response: result or error)",
                      request_id)
    return None


def _error(code: int, message: str, data: str, request_id: str | int | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message, "data": data}}


async def protocol_streams(limit: int = 50 * 1024 * 1024) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """(reader, writer) of well-formed JSON-RPC lines from stdin, and to the protocol's stdout."""
    loop = asyncio.get_running_loop()
    out = os.fdopen(take_stdout(), "wb", buffering=0)
    writer_transport, writer_protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, out)
    writer = asyncio.StreamWriter(writer_transport, writer_protocol, None, loop)
    reader = asyncio.StreamReader(limit=limit)

    def answer(reply: dict[str, Any]) -> None:
        writer.write(json.dumps(reply).encode() + b"\n")  # one whole line: never interleaves with the SDK's

    def feed() -> None:  # a thread: stdin may be a file or a tty, which the event loop cannot watch
        try:
            for line in iter(sys.stdin.buffer.readline, b""):
                if not line.strip():
                    continue
                reply = problem(line)
                if reply is None:
                    loop.call_soon_threadsafe(reader.feed_data, line if line.endswith(b"\n") else line + b"\n")
                else:
                    loop.call_soon_threadsafe(answer, reply)
        finally:
            loop.call_soon_threadsafe(reader.feed_eof)

    threading.Thread(target=feed, name="semcoder-stdin", daemon=True).start()
    return reader, writer


@contextlib.contextmanager
def guarded_stdio() -> Iterator[None]:
    """While inside, fd 0 and fd 1 are pipes through the guard: only well-formed messages reach whoever reads fd 0,
    and the guard answers the rest on the real stdout, each reply a whole line between the SDK's whole lines. The
    SDK must divert fd 1 while it serves (MCP's does: it finds sys.stdout on fd 1 and claims it). On exit
    everything the SDK wrote has reached the real stdout."""
    real_in, real_out = os.dup(0), os.dup(1)
    inner_in, to_inner = os.pipe()
    from_inner, inner_out = os.pipe()
    os.dup2(inner_in, 0)
    os.dup2(inner_out, 1)
    os.close(inner_in)
    os.close(inner_out)
    lock = threading.Lock()
    out = os.fdopen(real_out, "wb", buffering=0)

    def emit(line: bytes) -> None:
        with lock:
            out.write(line)

    def inbound() -> None:
        with os.fdopen(real_in, "rb", buffering=0) as source, os.fdopen(to_inner, "wb", buffering=0) as sink:
            for line in iter(source.readline, b""):
                if not line.strip():
                    continue
                reply = problem(line)
                if reply is None:
                    sink.write(line if line.endswith(b"\n") else line + b"\n")
                else:
                    emit(json.dumps(reply).encode() + b"\n")
        # (closing `sink` is the SDK's end of input)

    def outbound() -> None:
        with os.fdopen(from_inner, "rb") as source:
            for line in source:
                if line == _END:
                    return
                emit(line)

    readers = [threading.Thread(target=inbound, name="semcoder-stdin", daemon=True),
               threading.Thread(target=outbound, name="semcoder-stdout", daemon=True)]
    for thread in readers:
        thread.start()
    try:
        yield
    finally:
        # fd 1 is the SDK's pipe again (it restores what it diverted), and the SDK keeps a private copy open for
        # good: no end of file will come, so a last line marks the end of what it wrote.
        os.write(1, _END)
        readers[1].join(timeout=30)
        os.dup2(2, 1)
        out.close()
