"""What travels over a sandbox container's attach connection: the request in, the program's output out.

The request's files and code reach the container at the head of its stdin, because the root filesystem
is read-only and the working dir is a tmpfs that exists only once the container runs (so `docker cp`
cannot place them). A small bootstrap (below) writes them and runs the program, which reads the rest of
stdin as its own. Output comes back in Docker's multiplexed frames and is capped as it arrives.
"""

from __future__ import annotations

import base64
import contextlib
import json
import select
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sandbox._models import ExecRequest, Status
from sandbox._tree import links

HEADER_DIGITS = 16  # the request's length, in decimal, ahead of its JSON
_CHUNK = 65536
_FRAME_HEADER = struct.Struct(">BxxxL")  # stream id, 3 pad bytes, payload length
_STDOUT, _STDERR = 1, 2

# Runs as `python3 -c BOOTSTRAP HEADER_DIGITS` in the working dir inside the container: it writes the
# request's files and program, then runs the program as __main__ in this same interpreter (one Python
# start-up instead of two; the local backend runs programs the same way). os.read keeps stdin unbuffered,
# so that the program's sys.stdin starts exactly after the request.
BOOTSTRAP = r"""
import base64, builtins, json, os, sys
sys.dont_write_bytecode = True
def read_exact(n):
    data = bytearray()
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            sys.exit("sandbox bootstrap: stdin ended inside the request")
        data += chunk
    return bytes(data)
request = json.loads(read_exact(int(read_exact(int(sys.argv[1])))))
env = request.pop("env")
os.environ.update(env)
if {"LC_ALL", "LC_CTYPE", "LANG"} & set(env):  # as at start-up: the locale encoding follows the request's
    import locale
    try:
        locale.setlocale(locale.LC_CTYPE, "")
    except locale.Error:
        pass
try:
    for path, content in request.pop("files").items():
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(content))
    for path, target in request.pop("links").items():  # the request's tree around its files (sandbox/_tree.py)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        os.symlink(target, path)
    main_path = os.path.abspath(request["program"])
    with open(main_path, "w", encoding="utf-8", errors="surrogatepass") as f:
        f.write(request["code"])
except OSError as exc:
    sys.exit(f"sandbox: cannot write the request's files into the working dir: {exc}")
main = type(sys)("__main__")
main.__file__, main.__builtins__, main.__cached__ = main_path, builtins, None
sys.modules["__main__"] = main
sys.argv = [main_path, *request["argv"]]
sys.path[0] = os.path.dirname(main_path)
try:
    exec(compile(request.pop("code"), main_path, "exec"), main.__dict__)
except SystemExit:
    raise
except BaseException:
    error = sys.exc_info()[1]
    # The program's frames only, as `python main.py` shows (the hook prints __traceback__, not its argument).
    error = error.with_traceback(error.__traceback__.tb_next)
    sys.excepthook(type(error), error, error.__traceback__)
    sys.exit(1)
"""


def encode_request(request: ExecRequest) -> bytes:
    """Everything the container reads on stdin: length, the request as JSON, then the program's stdin."""
    files = {}
    for path, content in request.files.items():
        _check_relative(path)
        data = content.encode("utf-8") if isinstance(content, str) else content
        files[path] = base64.b64encode(data).decode("ascii")
    # The tree is bound read-only at the same path as in the local backend (DockerBackend binds request.tree).
    linked = links(request.tree, request.files) if request.tree else {}
    # Same naming as the local backend: the program is main.py beside its files unless a file takes that name.
    program = "__main__.py" if "main.py" in request.files or "main.py" in linked else "main.py"
    linked.pop(program, None)
    body = json.dumps({"code": request.code, "files": files, "links": linked, "program": program, "argv": request.argv,
                       "env": request.env})
    encoded = body.encode("utf-8")
    return f"{len(encoded):0{HEADER_DIGITS}d}".encode("ascii") + encoded + request.stdin


def _check_relative(path: str) -> None:
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or ".." in parts:
        raise ValueError(f"ExecRequest.files: {path!r} must be a relative path inside the working dir")


@dataclass
class Streams:
    """What the program wrote, capped, and why we stopped it (None: it ended on its own)."""

    output_cap: int
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    stopped_for: Status | None = None

    def add(self, stream_id: int, data: bytes) -> None:
        if stream_id not in (_STDOUT, _STDERR):
            return
        buffer = self.stdout if stream_id == _STDOUT else self.stderr
        room = self.output_cap - len(buffer)
        buffer += data[: max(room, 0)]
        if len(data) > room:
            if stream_id == _STDOUT:
                self.stdout_truncated = True
            else:
                self.stderr_truncated = True
            self.stopped_for = Status.output_limit


# After one stream passes its cap, read a little longer: the engine forwards stdout and stderr separately,
# so what the program wrote to the other stream earlier may still be on its way.
_CAP_GRACE_S = 0.2


def pump(sock: socket.socket, stdin: bytes, deadline: float, output_cap: int) -> Streams:
    """Feeds stdin and reads the multiplexed output until the container ends, a cap or the deadline.

    One thread, non-blocking both ways: a program that neither reads its stdin nor stops writing can
    block neither side.
    """
    streams = Streams(output_cap)
    pending = memoryview(stdin)
    received = bytearray()
    stdin_open = True
    sock.setblocking(False)
    grace_until: float | None = None
    while True:
        now = time.monotonic()
        if streams.stopped_for is not None and grace_until is None:
            grace_until = min(now + _CAP_GRACE_S, deadline)
        remaining = (deadline if grace_until is None else grace_until) - now
        if remaining <= 0:
            if grace_until is None:
                streams.stopped_for = Status.timeout
            break
        if stdin_open and not pending:
            stdin_open = _close_stdin(sock)
        readable, writable, _ = select.select([sock], [sock] if stdin_open else [], [], remaining)
        if writable:
            pending, stdin_open = _send_some(sock, pending)
        if readable:
            chunk = _recv_some(sock)
            if chunk == b"":
                break
            received += chunk or b""
            _take_frames(received, streams)
    return streams


def _send_some(sock: socket.socket, pending: memoryview) -> tuple[memoryview, bool]:
    try:
        sent = sock.send(pending[:_CHUNK])
    except BlockingIOError:
        return pending, True
    except (BrokenPipeError, ConnectionResetError):
        return memoryview(b""), False  # the program stopped reading; the rest of its stdin is moot
    return pending[sent:], True


def _close_stdin(sock: socket.socket) -> bool:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    return False


def _recv_some(sock: socket.socket) -> bytes | None:
    """Bytes read; b"" at end of stream; None when select's readiness was spurious."""
    try:
        return sock.recv(_CHUNK)
    except BlockingIOError:
        return None
    except ConnectionResetError:
        return b""


def _take_frames(received: bytearray, streams: Streams) -> None:
    while len(received) >= _FRAME_HEADER.size:
        stream_id, length = _FRAME_HEADER.unpack_from(received)
        end = _FRAME_HEADER.size + length
        if len(received) < end:
            return
        streams.add(stream_id, bytes(received[_FRAME_HEADER.size : end]))
        del received[:end]


def raw_socket(attached: Any) -> socket.socket:
    """The socket under the docker SDK's attach_socket() result."""
    return getattr(attached, "_sock", attached)


def is_quiet(attached: Any) -> bool:
    """True while nothing (no output, no end of stream) waits on a started container's connection:
    its bootstrap is still waiting for a request."""
    return not select.select([raw_socket(attached)], [], [], 0)[0]


def close_attached(attached: Any) -> None:
    """Closes the hijacked connection and the HTTP response around it (the SDK keeps it on `_response`)."""
    response = getattr(attached, "_response", None)
    with contextlib.suppress(OSError, ValueError):
        if response is not None:
            response.close()
        attached.close()
