"""Line-level execution traces of untrusted code, taken inside the sandbox.

`trace_call(code, call)` runs `code` as a module and evaluates `call` in its namespace under the
tracer; `trace_batch(rows)` does the same for many rows in one sandboxed process, and `trace_batch_json(rows)`
gives each row's `semcoder trace` JSON line straight from the child's compact record (what `semcoder
trace-batch` prints: no Trace models in between, the same bytes). The tracer is a job
(sandbox/job.py): its program is sandbox/_tracer_child.py, which sends a "ready" record and then one
record per row. Jobs go to the caller's `runner` (a `sandbox.Pool`: its backend, its warm workers), else
to a cold sandbox of `backend`. A row whose process dies (a limit, os._exit) gets a trace describing
that, a row whose code broke the tracer's channel gets a trace saying so, and the remaining rows
continue in a fresh job; the rows reported before either still count.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from importlib.machinery import EXTENSION_SUFFIXES
from importlib.util import find_spec
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import TypeVar

from sandbox._bytecode import shipped_bytecode
from sandbox._errors import SandboxError
from sandbox._models import ExecResult, Limits, Status
from sandbox._pool import Pool
from sandbox._trace_model import Trace, TraceEvent, TraceOptions, TraceRow
from sandbox.job import Job, JobResult, JobRunner, Preload, outer_limits, run_job

__all__ = ["Trace", "TraceEvent", "TraceOptions", "TraceRow", "trace_batch", "trace_batch_json", "trace_call"]

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
Out = TypeVar("Out")
# A converter turns one child record (already JSON-decoded) and its row into what the caller wants; it raises
# TypeError, ValueError, LookupError or AttributeError for a record that is not a trace (the traced code's doing).
Convert = Callable[[dict, TraceRow], Out]
_NOT_A_TRACE = (TypeError, ValueError, LookupError, AttributeError, RecursionError)  # ValidationError: a ValueError


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


def trace_batch_json(
    rows: Sequence[TraceRow],
    *,
    options: TraceOptions | None = None,
    backend: str = "local",
    progress: Progress | None = None,
    runner: JobRunner | None = None,
) -> Iterator[str]:
    """Each row's `render_json(trace)` line, in order, as trace_batch would give them, yielded job by job.

    The lines are built from the child's compact records directly (checked as strictly as the Trace model
    checks them), not through Trace/TraceEvent models and a second encoding of every snapshot: for a batch,
    that was most of the host's time. A row's program output is not part of the JSON object, so it is dropped,
    and the child leaves out what the object does not show (TraceOptions.states_only).
    """
    rows = list(rows)
    filenames = [f"<semcoder-trace-{index}>" for index in range(len(rows))]
    states = (options or TraceOptions()).model_copy(update={"states_only": True})  # the JSON shows no values
    for done in _traced_parts(rows, states, filenames, progress, backend, runner, _json_line):
        yield from done


def _trace_rows(
    rows: list[TraceRow],
    options: TraceOptions,
    filenames: list[str],
    progress: Progress | None,
    backend: str,
    runner: JobRunner | None,
) -> list[Trace]:
    traces: list[Trace] = []
    for done in _traced_parts(rows, options, filenames, progress, backend, runner, _to_trace):
        traces.extend(done)
    return traces


def _traced_parts(
    rows: list[TraceRow],
    options: TraceOptions,
    filenames: list[str],
    progress: Progress | None,
    backend: str,
    runner: JobRunner | None,
    convert: Convert[Out],
) -> Iterator[list[Out]]:
    """The rows' converted traces, one list per job: a job runs the rows from the first one not yet traced."""
    count = 0
    hold = True  # the child writes its records every few ms, not row by row (_tracer_child.main)
    while count < len(rows):
        start = count
        job = tracer_job(rows[start:], options, filenames[start:], hold=hold)
        early: dict[int, tuple[object, Out]] = {}
        if isinstance(runner, Pool):  # a warm local pool streams the records: each is converted as it comes
            result = runner.submit_job(job, on_record=_converting(rows[start:], convert, early)).result()
        else:
            # A cold run does not stream: tried, it gained 5 ms on 800 rows at load 0 and cost 100 ms at load 4, the
            # child waiting on the server and the server on this process (benchmarks/tracer_overhead.py's cli path).
            result = runner.submit_job(job).result() if runner is not None else run_job(job, backend=backend)
        done, failed = _read_records(result, rows[start:], convert, early)
        if failed is not None and hold:
            # Records held back when the job failed are lost with it, so the row it failed on is not known: run the
            # unreported rows again, each reported as it ends (the failing row then fails again, and is the one).
            hold = False
        elif failed is not None:  # the job failed during the next row; the rest go to a fresh job
            done.append(failed)
            hold = True
        count += len(done)
        if progress is not None and done:
            progress(count, len(rows))
        if done:
            yield done


def tracer_job(rows: Sequence[TraceRow], options: TraceOptions, filenames: Sequence[str], hold: bool = False) -> Job:
    """The job that traces `rows` (the program is sandbox/_tracer_child.py's source); `hold`: the child writes its
    records a few at a time, and a failure of the job does not tell which row it was (see _traced_parts)."""
    data = {
        "options": options.model_dump(exclude={"memory_mb"}),
        "rows": [{"code": r.code, "call": r.call, "filename": f} for r, f in zip(rows, filenames, strict=True)],
        "hold": hold,
    }
    return Job(program=_PROGRAM, data=data, files=_child_files(), limits=_limits(options, len(rows)),
               preload=_preload())


def read_traces(result: JobResult, rows: Sequence[TraceRow]) -> tuple[list[Trace], Trace | None]:
    """The traces of the rows the job reported, in order, and the trace of the row it failed on.

    The second is None when every row was reported. A job that never sent its "ready" record (the
    tracer did not start) raises SandboxError; a row's record that is not a trace is the traced code's
    doing (it reached the channel) and gets the interference trace.
    """
    return _read_records(result, rows, _to_trace)


def _converting(rows: Sequence[TraceRow], convert: Convert[Out], early: dict[int, tuple[object, Out]]):
    """An on_record for Pool.submit_job: the rows' records converted while the job still runs (in the pool's thread,
    while this one waits), kept by record number with the record they came from."""

    def on_record(index: int, record: object) -> None:
        if 1 <= index <= len(rows):  # record 0 is the tracer's "ready"
            with contextlib.suppress(*_NOT_A_TRACE):  # not a trace: judged with the result (the interference trace)
                early[index] = (record, convert(record, rows[index - 1]))

    return on_record


def _read_records(result: JobResult, rows: Sequence[TraceRow], convert: Convert[Out],
                  early: dict[int, tuple[object, Out]] | None = None) -> tuple[list[Out], Out | None]:
    """read_traces with any converter (`_to_trace`, `_json_line`); `early`: records converted as they came, used where
    the result's record is the same (the result is the judge)."""
    records = result.records
    if not records or not isinstance(records[0], dict) or "ready" not in records[0]:
        execution = result.execution
        raise SandboxError(
            f"the tracer did not start in the sandbox (status {execution.status.value}, exit code "
            f"{execution.exit_code}): {result.problem or 'no ready record'}: {execution.stderr[-2000:]}"
        )
    done: list[Out] = []
    for index, (record, row) in enumerate(zip(records[1:], rows, strict=False), start=1):
        converted = early.get(index) if early else None
        if converted is not None and converted[0] == record:
            done.append(converted[1])
            continue
        try:
            done.append(convert(record, row))  # the child's JSON text (send_json), or what broke the channel
        except _NOT_A_TRACE:
            return done, convert(_interference_item(), row)
    if len(done) == len(rows):
        return done, None
    return done, convert(_failure_item(result), rows[len(done)])


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


def _decoded(item: dict | str) -> dict:
    """A row's record: the child sends JSON text (RawJSON); anything else is what the traced code put there."""
    return json.loads(item) if isinstance(item, str) else item


def _to_trace(item: dict | str, row: TraceRow) -> Trace:
    item = _decoded(item)
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


_EVENT_KINDS = frozenset({"call", "line", "return", "exception"})


def _json_line(item: dict | str, row: TraceRow | None = None) -> str:
    """`render_json(_to_trace(item, row))`, byte for byte, without building the models (the C form when built).

    The child's JSON text is read by the C form without decoding it into Python objects first when it is in the
    child's form (every string copied as it is: what decoding and encoding it again gives); text in any other
    form is decoded and judged by the checks below."""
    if isinstance(item, str):
        if _raw_line_of is not None:
            try:
                return _raw_line_of(item)
            except ValueError:
                pass
        item = json.loads(item)
    return _line_of(item)


def json_line_py(item: dict) -> str:
    """_json_line's Python form, the reference for the C one (sandbox/_semcoder_speedups.c).

    json.dumps' default form (", " and ": " separators, ASCII escapes by the same C function) is written
    piece by piece: each activation keeps its locals as encoded `"name": "repr"` pieces, in the snapshot's
    order, so a repr is encoded once when it changes instead of once per event that shows it, and each event is
    one %-format of its activation's template. Every field is checked as the models check it (exact types here:
    the child sends nothing else); anything else raises.
    """
    return_repr, exception, compact, frames, truncated = (
        item["return_repr"], item["exception"], item["events"], item["frames"], item["truncated"])
    if not (_str_or_none(return_repr) and _str_or_none(exception) and type(truncated) is bool
            and type(item["output"]) is str and type(compact) is list and type(frames) is list):
        raise TypeError("not a trace record")
    templates = []  # per activation: its event object with the kind, line and locals left to fill in
    for func, depth in frames:
        if type(func) is not str or type(depth) is not int:
            raise TypeError("not an activation")
        templates.append('{"event": "%s", "func": ' + encode_basestring_ascii(func).replace("%", "%%")
                         + ', "line": %d, "locals": %s}')
    count = len(templates)
    pieces: dict[int, dict[str, str]] = {}
    texts: dict[int, str] = {}
    events = []
    append, kinds, encode = events.append, _EVENT_KINDS, encode_basestring_ascii
    for event in compact:
        if len(event) == 4:
            kind, line, delta, frame = event
            removed = value = None
        else:
            kind, line, delta, frame, removed, value = event
            if not (value is None or type(value) is str) or not (removed is None or type(removed) is list):
                raise TypeError("not an event")
        if kind not in kinds or type(line) is not int or type(delta) is not dict or type(frame) is not int:
            raise TypeError("not an event")
        if delta or removed or frame not in texts:
            if not 0 <= frame < count:
                raise ValueError("no such activation")
            mine = pieces.get(frame)
            if mine is None:
                mine = pieces[frame] = {}
            for name, text in delta.items():
                if type(name) is not str or type(text) is not str:
                    raise TypeError("not a local")
                mine[name] = encode(name) + ": " + encode(text)
            for name in removed or ():
                if type(name) is not str:
                    raise TypeError("not a local's name")
                mine.pop(name, None)
            texts[frame] = "{" + ", ".join(mine.values()) + "}"
        append(templates[frame] % (kind, line, texts[frame]))
    return ('{"return_repr": ' + _json_str(return_repr) + ', "exception": ' + _json_str(exception)
            + ', "events": [' + ", ".join(events) + '], "truncated": ' + ("true" if truncated else "false") + "}")


def _str_or_none(value: object) -> bool:
    return value is None or type(value) is str


def _json_str(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


try:
    from sandbox._semcoder_speedups import json_line as _line_of
    from sandbox._semcoder_speedups import json_line_raw as _raw_line_of
except ImportError:  # built without a compiler: the Python form
    _line_of, _raw_line_of = json_line_py, None


# The tracer is a module of the job's (sandbox/_tracer_child.py shipped as _semcoder_tracer.py), so that its bytecode
# can go with it: a cold tracer job loads it instead of compiling a thousand lines.
_MODULE = "_semcoder_tracer"
_PROGRAM = f"from {_MODULE} import main\n"


@cache
def _child_files() -> dict[str, bytes | str]:
    """The tracer module, its bytecode where there is some (sandbox/_bytecode.py), and the C speedups."""
    files: dict[str, bytes | str] = {f"{_MODULE}.py": _child_source(), **_speedups_files()}
    bytecode = shipped_bytecode(_CHILD, _MODULE)
    if bytecode is not None:
        files[bytecode[0]] = bytecode[1]
    return files


@cache
def _speedups_files() -> dict[str, bytes]:
    """The C speedups as a job file, named with this interpreter's extension suffix: inside the sandbox only an
    interpreter of the same ABI imports it (a traced child on another Python ignores it and runs the Python forms).
    Empty when the extension was not built."""
    spec = find_spec("sandbox._semcoder_speedups")
    if spec is None or not spec.origin or not spec.origin.endswith(tuple(EXTENSION_SUFFIXES)):
        return {}
    path = Path(spec.origin)
    return {"_semcoder_speedups" + path.name[len("_semcoder_speedups"):]: path.read_bytes()}


_CHILD = Path(__file__).with_name("_tracer_child.py")


@cache
def _child_source() -> str:
    return _CHILD.read_text(encoding="utf-8")


_TOP_LEVEL_IMPORT = re.compile(r"^(?:import|from) ([\w.]+)", re.MULTILINE)


@cache
def _preload() -> Preload:
    """On a warm pool, a child for the next tracer job imports the tracer's standard modules (its unindented imports)
    and compiles the tracer before the job comes: a row's job then starts in a few ms, not tens. The tracer runs on
    the standard library alone: no site-packages, as in a cold start. `ast` too, which the tracer imports only for a
    call its patterns do not read (a cold job rarely needs it)."""
    modules = sorted({name for name in _TOP_LEVEL_IMPORT.findall(_child_source()) if name != "__future__"} | {"ast"})
    return Preload(modules=modules, site_packages=False, compile=(f"{_MODULE}.py",))
