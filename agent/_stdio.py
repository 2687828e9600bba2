"""JSON-RPC over this process's stdin and stdout, for the protocol servers an editor or an agent starts (ACP, MCP).

Two things the protocol SDKs leave to their user:
- stdout must carry protocol messages only. The process runs sandboxes, a model client and libraries that may
  print; so the protocol gets a private duplicate of fd 1, and fd 1 itself is pointed at stderr, where a stray
  print (ours, a library's, a child's) lands harmlessly.
- a line that is not JSON, or not a JSON-RPC message, is answered per JSON-RPC 2.0 (-32700 parse error, -32600
  invalid request, with id null) instead of being dropped or killing the read loop; only well-formed messages
  reach the SDK.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from typing import Any

PARSE_ERROR, INVALID_REQUEST = -32700, -32600


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
    method, has_id = message.get("method"), "id" in message
    if message.get("jsonrpc") != "2.0" or (method is None and not has_id) or \
            (method is not None and not isinstance(method, str)):
        return _error(INVALID_REQUEST, "Invalid Request", "not a JSON-RPC 2.0 request, notification or response",
                      message.get("id") if isinstance(message.get("id"), str | int) else None)
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
