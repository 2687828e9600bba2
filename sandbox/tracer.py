"""Line-level execution traces of untrusted code, taken inside the sandbox.

`trace_call(code, call)` runs `code` as a module and evaluates `call` in its namespace under the
tracer (sandbox/_tracer_child.py, shipped into the sandbox's working dir); `trace_batch(rows)` does
the same for many rows in one sandboxed process. A row whose process dies (a limit, os._exit) gets a
trace describing that, and the remaining rows continue in a fresh process.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from sandbox._models import ExecRequest, ExecResult, Limits, SandboxError, Status
from sandbox._trace_model import Trace, TraceEvent, TraceOptions, TraceRow

__all__ = ["Trace", "TraceEvent", "TraceOptions", "TraceRow", "trace_batch", "trace_call"]

PSEUDO_FILENAME = "<semcoder-trace>"
_CHILD_MODULE = "_semcoder_tracer_child"
_REQUEST_FILE = "trace_request.json"
_RESULT_PREFIX = "@@semcoder-trace"
_LAUNCHER = (
    "import os, sys\n"
    "sys.path.insert(0, os.getcwd())\n"
    f"import {_CHILD_MODULE}\n"
    f"{_CHILD_MODULE}.main({_REQUEST_FILE!r})\n"
)
# What a process death means for the row that was running, by the supervisor's status.
_DEATH_MESSAGES = {
    Status.timeout: "TimeoutError: the sandbox's wall or CPU limit killed the process",
    Status.memory: "MemoryError: the sandbox's memory limit killed the process",
    Status.output_limit: "OSError: the program wrote past the sandbox's output limit",
}

Progress = Callable[[int, int], None]


def trace_call(
    code: str,
    call: str,
    *,
    options: TraceOptions | None = None,
    filename: str = PSEUDO_FILENAME,
    backend: str = "local",
) -> Trace:
    """Trace `call` (an expression) evaluated in the namespace of `code` loaded as a module.

    `filename` names the code in tracebacks and decides which frames are traced (the code's own).
    Untrusted code failing is part of the Trace; a sandbox failure raises SandboxError.
    """
    rows = [TraceRow(code=code, call=call)]
    return _trace_rows(rows, options or TraceOptions(), backend, [filename], None)[0]


def trace_batch(
    rows: Sequence[TraceRow],
    *,
    options: TraceOptions | None = None,
    backend: str = "local",
    progress: Progress | None = None,
) -> list[Trace]:
    """Trace every row, in order, in one sandboxed process (a fresh one only after a crash)."""
    filenames = [f"<semcoder-trace-{index}>" for index in range(len(rows))]
    return _trace_rows(list(rows), options or TraceOptions(), backend, filenames, progress)


def _trace_rows(
    rows: list[TraceRow],
    options: TraceOptions,
    backend: str,
    filenames: list[str],
    progress: Progress | None,
) -> list[Trace]:
    raw: list[dict] = []
    while len(raw) < len(rows):
        start = len(raw)
        done, result = _run_process(rows[start:], filenames[start:], options, backend)
        raw.extend(done)
        if len(raw) < len(rows):  # the process died during the next row
            raw.append(_death_row(result))
        if progress is not None:
            progress(len(raw), len(rows))
    return [_to_trace(item, row) for item, row in zip(raw, rows, strict=True)]


def _run_process(
    rows: list[TraceRow], filenames: list[str], options: TraceOptions, backend: str
) -> tuple[list[dict], ExecResult]:
    # Imported when used: sandbox/__init__.py may import this module, so a top-level import could be circular.
    from sandbox import run

    nonce = secrets.token_hex(8)
    request = {
        "nonce": nonce,
        "options": options.model_dump(exclude={"memory_mb"}),
        "rows": [{"code": r.code, "call": r.call, "filename": f} for r, f in zip(rows, filenames, strict=True)],
    }
    exec_request = ExecRequest(
        code=_LAUNCHER,
        files={f"{_CHILD_MODULE}.py": _child_source(), _REQUEST_FILE: json.dumps(request)},
        limits=_limits(options, len(rows)),
    )
    result = run(exec_request, backend=backend)
    ready, done = _parse_results(result.stdout, nonce)
    if not ready:
        raise SandboxError(
            f"the tracer did not start in the sandbox (status {result.status.value}, "
            f"exit code {result.exit_code}): {result.stderr[-2000:]}"
        )
    return done, result


def _limits(options: TraceOptions, rows: int) -> Limits:
    # The child enforces each row's budget itself; the process limits only catch what escapes it.
    seconds = rows * (options.call_timeout_s + 1.0) + 30.0
    # JSON escaping can multiply a repr's size (\uXXXX), hence the factor.
    per_row = 6 * (options.max_bytes + options.output_chars + 4 * options.repr_chars) + 4096
    return Limits(
        wall_time_s=seconds,
        cpu_time_s=seconds,
        memory_mb=options.memory_mb,
        output_bytes=rows * per_row + 1_000_000,
    )


def _parse_results(stdout: str, nonce: str) -> tuple[bool, list[dict]]:
    """The framed lines the child wrote, in row order; anything else on stdout is ignored."""
    prefix = f"{_RESULT_PREFIX} {nonce} "
    ready = False
    done: list[dict] = []
    for line in stdout.splitlines():
        if not line.startswith(prefix):
            continue
        tag, _, body = line[len(prefix) :].partition(" ")
        if tag == "ready":
            ready = True
        elif tag == str(len(done)):
            done.append(json.loads(body))
    return ready, done


def _death_row(result: ExecResult) -> dict:
    message = _DEATH_MESSAGES.get(
        result.status, f"SystemExit: the process ended (exit code {result.exit_code}) before the call returned"
    )
    return {"return_repr": None, "exception": message, "events": [], "frames": [], "truncated": False, "output": ""}


def _to_trace(item: dict, row: TraceRow) -> Trace:
    return Trace(
        return_repr=item["return_repr"],
        exception=item["exception"],
        events=_full_events(item["events"], item["frames"]),
        truncated=item["truncated"],
        source=row.code,
        call=row.call,
        output=item["output"],
    )


def _full_events(compact: list[list], frames: list[list]) -> list[TraceEvent]:
    """Rebuild each event's full locals from the child's compact form.

    The child sends [kind, line, delta, activation] (plus [removed, value] when either is set): the
    locals whose repr changed since the activation's previous event, and the names that went away;
    `frames` gives each activation's function name and depth.
    """
    current: dict[int, dict[str, str]] = {}
    events = []
    for kind, line, delta, frame, *rest in compact:
        removed, value = rest or (None, None)
        snapshot = current.setdefault(frame, {})
        snapshot.update(delta)
        for name in removed or ():
            snapshot.pop(name, None)
        func, depth = frames[frame]
        events.append(
            TraceEvent(event=kind, func=func, line=line, locals=dict(snapshot), frame=frame, depth=depth, value=value)
        )
    return events


@cache
def _child_source() -> str:
    return (Path(__file__).with_name("_tracer_child.py")).read_text(encoding="utf-8")
