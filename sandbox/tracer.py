"""Line-level execution traces of untrusted code, taken inside the sandbox.

`trace_call(code, call)` runs `code` as a module and evaluates `call` in its namespace under the
tracer; `trace_batch(rows)` does the same for many rows in one sandboxed process. The tracer is a job
(sandbox/job.py): its program is sandbox/_tracer_child.py, which sends a "ready" record and then one
record per row. Jobs go to the caller's `runner` (a `sandbox.Pool`: its backend, its warm workers), else
to a cold sandbox of `backend`. A row whose process dies (a limit, os._exit) gets a trace describing
that, a row whose code broke the tracer's channel gets a trace saying so, and the remaining rows
continue in a fresh job; the rows reported before either still count.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from sandbox._models import ExecResult, Limits, SandboxError, Status
from sandbox._trace_model import Trace, TraceEvent, TraceOptions, TraceRow
from sandbox.job import Job, JobResult, JobRunner, outer_limits, run_job

__all__ = ["Trace", "TraceEvent", "TraceOptions", "TraceRow", "trace_batch", "trace_call"]

PSEUDO_FILENAME = "<semcoder-trace>"
# What a process death means for the row that was running, by the supervisor's status.
_DEATH_MESSAGES = {
    Status.timeout: "TimeoutError: the sandbox's wall or CPU limit killed the process",
    Status.memory: "MemoryError: the sandbox's memory limit killed the process",
    Status.output_limit: "OSError: the program wrote past the sandbox's output limit",
}
INTERFERENCE_MESSAGE = (
    "RuntimeError: the traced code interfered with the tracer's channel (it wrote to the tracer's result "
    "stream), so the call's trace was discarded"
)

Progress = Callable[[int, int], None]


def trace_call(
    code: str,
    call: str,
    *,
    options: TraceOptions | None = None,
    filename: str = PSEUDO_FILENAME,
    backend: str = "local",
    runner: JobRunner | None = None,
) -> Trace:
    """Trace `call` (an expression) evaluated in the namespace of `code` loaded as a module.

    `filename` names the code in tracebacks and decides which frames are traced (the code's own).
    `runner` (e.g. the caller's `sandbox.Pool`) runs the tracer's job; without one, a cold sandbox of
    `backend` does. Untrusted code failing is part of the Trace; a sandbox failure raises SandboxError.
    """
    rows = [TraceRow(code=code, call=call)]
    return _trace_rows(rows, options or TraceOptions(), [filename], None, backend, runner)[0]


def trace_batch(
    rows: Sequence[TraceRow],
    *,
    options: TraceOptions | None = None,
    backend: str = "local",
    progress: Progress | None = None,
    runner: JobRunner | None = None,
) -> list[Trace]:
    """Trace every row, in order, in one sandboxed job (a fresh one only after a crash); see trace_call."""
    filenames = [f"<semcoder-trace-{index}>" for index in range(len(rows))]
    return _trace_rows(list(rows), options or TraceOptions(), filenames, progress, backend, runner)


def _trace_rows(
    rows: list[TraceRow],
    options: TraceOptions,
    filenames: list[str],
    progress: Progress | None,
    backend: str,
    runner: JobRunner | None,
) -> list[Trace]:
    traces: list[Trace] = []
    while len(traces) < len(rows):
        start = len(traces)
        job = tracer_job(rows[start:], options, filenames[start:])
        result = runner.submit_job(job).result() if runner is not None else run_job(job, backend=backend)
        done, failed = read_traces(result, rows[start:])
        traces.extend(done)
        if failed is not None:  # the job failed during the next row; the rest go to a fresh job
            traces.append(failed)
        if progress is not None:
            progress(len(traces), len(rows))
    return traces


def tracer_job(rows: Sequence[TraceRow], options: TraceOptions, filenames: Sequence[str]) -> Job:
    """The job that traces `rows` (the program is sandbox/_tracer_child.py's source)."""
    data = {
        "options": options.model_dump(exclude={"memory_mb"}),
        "rows": [{"code": r.code, "call": r.call, "filename": f} for r, f in zip(rows, filenames, strict=True)],
    }
    return Job(program=_child_source(), data=data, limits=_limits(options, len(rows)))


def read_traces(result: JobResult, rows: Sequence[TraceRow]) -> tuple[list[Trace], Trace | None]:
    """The traces of the rows the job reported, in order, and the trace of the row it failed on.

    The second is None when every row was reported. A job that never sent its "ready" record (the
    tracer did not start) raises SandboxError; a row's record that is not a trace is the traced code's
    doing (it reached the channel) and gets the interference trace.
    """
    records = result.records
    if not records or not isinstance(records[0], dict) or "ready" not in records[0]:
        execution = result.execution
        raise SandboxError(
            f"the tracer did not start in the sandbox (status {execution.status.value}, exit code "
            f"{execution.exit_code}): {result.problem or 'no ready record'}: {execution.stderr[-2000:]}"
        )
    done: list[Trace] = []
    for record, row in zip(records[1:], rows, strict=False):
        try:
            done.append(_to_trace(json.loads(record), row))
        except (TypeError, ValueError, LookupError, AttributeError, RecursionError):  # ValidationError: a ValueError
            return done, _to_trace(_interference_item(), row)
    if len(done) == len(rows):
        return done, None
    return done, _to_trace(_failure_item(result), rows[len(done)])


def _failure_item(result: JobResult) -> dict:
    """Why the job stopped before reporting the next row: a process death, or a broken channel."""
    execution = result.execution
    if execution.status in _DEATH_MESSAGES or execution.stdout_truncated:
        return _death_item(execution)  # a limit killed it; a frame cut short is the kill's doing
    if result.ended or result.interfered:
        # Ended without every row, or a frame that is malformed, unkeyed or out of order: only the traced
        # code can have written that to the channel.
        return _interference_item()
    return _death_item(execution)


def _limits(options: TraceOptions, rows: int) -> Limits:
    # The child enforces each row's budget itself; these limits only catch what escapes it. A row's record
    # is its JSON escaped again as a JSON string (\uXXXX can multiply a repr's size), hence the factor.
    per_row = 8 * (options.max_bytes + options.output_chars + 4 * options.repr_chars) + 4096
    return outer_limits(per_unit_s=options.call_timeout_s + 0.5, units=rows, start_s=30.0,
                        memory_mb=options.memory_mb, per_unit_bytes=per_row)


def _death_item(result: ExecResult) -> dict:
    message = _DEATH_MESSAGES.get(
        result.status, f"SystemExit: the process ended (exit code {result.exit_code}) before the call returned"
    )
    if result.stdout_truncated:
        message = _DEATH_MESSAGES[Status.output_limit]
    return _empty_item(message)


def _interference_item() -> dict:
    return _empty_item(INTERFERENCE_MESSAGE)


def _empty_item(exception: str) -> dict:
    return {"return_repr": None, "exception": exception, "events": [], "frames": [], "truncated": False, "output": ""}


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
