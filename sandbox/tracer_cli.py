"""`semcoder trace` and `semcoder trace-batch`: the tracer from the command line.

A command starts its sandbox first (sandbox.start_early), then imports the tracer (pydantic and the rest): the
sandbox's start-up runs beside the imports instead of after them. This module's own imports are the light ones.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sandbox._defaults import BACKENDS
from sandbox._errors import SandboxError
from sandbox.trace_render import FORMATS

if TYPE_CHECKING:
    from sandbox.job import JobRunner
    from sandbox.tracer import TraceOptions, TraceRow


def _start(backend: str, python: str | None, max_events: int, max_depth: int | None, timeout: float) -> TraceOptions:
    """The run's options, with its sandbox starting meanwhile when it will be a cold local one."""
    if backend == "local" and python is None:
        from sandbox import start_early

        start_early()
    from sandbox.tracer import TraceOptions

    return TraceOptions(max_events=max_events, max_depth=max_depth, call_timeout_s=timeout)


def _common(command):
    decorators = [
        click.option("--max-events", type=click.IntRange(min=1), default=10_000, show_default=True,
                     help="Keep the first N events; past it the trace is marked truncated."),
        click.option("--max-depth", type=click.IntRange(min=1), default=None,
                     help="Trace frames only this deep (1 = called by the expression). Default: any depth."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
                     help="Seconds one call may run (module load included)."),
        click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True, help="Sandbox backend."),
        click.option("--python", "python", default=None, metavar="PATH",
                     help="Trace on this interpreter or venv (3.8+; local backend) instead of semcoder's own. "
                          "On 3.12+ the tracer uses sys.monitoring."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@contextlib.contextmanager
def _runner(backend: str, python: str | None) -> Iterator[JobRunner | None]:
    """None (a cold sandbox of `backend`, as before) unless another interpreter was asked for: then a pool of one
    worker on it (how the sandbox runs a project's Python)."""
    if python is None:
        yield None
        return
    from sandbox import Pool

    try:
        pool = Pool(workers=1, backend=backend, python=python)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    with pool:
        yield pool


@click.command("trace")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--call", "call", required=True, help="Expression to evaluate in FILE's namespace, e.g. 'f(1, [2])'.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@_common
def trace_command(
    file: Path, call: str, fmt: str, max_events: int, max_depth: int | None, timeout: float, backend: str,
    python: str | None,
) -> None:
    """Trace CALL evaluated in FILE (loaded as a module, its own code untraced), in the sandbox.

    JSON prints one object; the program's own output goes to stderr. Exit code 0 whenever the trace
    was printed, also when the call raised.
    """
    options = _start(backend, python, max_events, max_depth, timeout)
    from sandbox.trace_render import render
    from sandbox.tracer import trace_call

    code = file.read_text(encoding="utf-8")
    try:
        with _runner(backend, python) as runner:
            trace = trace_call(code, call, options=options, filename=str(file), backend=backend, runner=runner)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    if trace.output:
        sys.stderr.write(trace.output)
    click.echo(render(trace, fmt))


@click.command("trace-batch")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=True,
              help="JSONL out: for each input line, the object `semcoder trace` prints (the only format).")
@_common
def trace_batch_command(
    file: Path, as_json: bool, max_events: int, max_depth: int | None, timeout: float, backend: str,
    python: str | None,
) -> None:
    """Trace every {"code": str, "call": str} line of FILE.jsonl in one sandboxed process.

    Prints one line per input line, in order; a row whose code fails to load, whose call raises or
    times out, or that is not a valid row still gets its line.
    """
    options = _start(backend, python, max_events, max_depth, timeout)
    from sandbox.tracer import trace_batch_json

    rows, errors = _read_rows(file)

    def progress(done: int, total: int) -> None:
        click.echo(f"traced {done}/{total} rows", err=True)

    # Lines go out as each job's rows come back, written in one piece per job: click.echo per line asks
    # the terminal about colours each time, which for a batch cost more than the encoding.
    out: list[str] = []
    try:
        with _runner(backend, python) as runner:
            lines = trace_batch_json([r for r in rows if r is not None], options=options, backend=backend,
                                     progress=progress, runner=runner)
            for row, error in zip(rows, errors, strict=True):
                out.append(next(lines) if row is not None else json.dumps(_bad_row(error)))
                if len(out) >= _FLUSH_LINES:
                    _write_lines(out)
    except SandboxError as exc:
        _write_lines(out)
        raise click.ClickException(str(exc)) from exc
    _write_lines(out)


_FLUSH_LINES = 64


def _write_lines(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        lines.clear()


def _read_rows(file: Path) -> tuple[list[TraceRow | None], list[str]]:
    from sandbox.tracer import TraceRow

    rows: list[TraceRow | None] = []
    errors: list[str] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(TraceRow.model_validate_json(line))
            errors.append("")
        except ValueError as exc:
            rows.append(None)
            errors.append(f"line {number} is not a {{\"code\": str, \"call\": str}} object: {exc}")
    return rows, errors


def _bad_row(error: str) -> dict[str, object]:
    message = error.replace("\n", " ")
    return {"return_repr": None, "exception": f"ValueError: {message}", "events": [], "truncated": False}
