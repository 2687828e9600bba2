"""The tools: thin adapters from an MCP call to the functions `semcoder repair` and `semcoder trace` use.

Nothing here re-implements the loop. A project becomes a task exactly as the API accepts one (agent/api/intake.py:
the same loader, settings, interpreter detection and Docker rule); its tests run through agent.tasks.TestRunner;
a failure is explained with the trace node's own functions (agent/failing_test.py, agent/localize.py,
agent/nodes/trace.focus_location, agent/feedback.render_trace); the tracer is sandbox's public API.

Errors: the code under test failing is data (a status, a problem, a failed outcome). A caller's mistake (a path
outside the allowed roots, a bad argument) and infrastructure failing (no bwrap, Docker down) raise ToolError, which
the SDK answers as an isError result with the message: the server keeps serving. Each tool's docstring is its
description for the calling model.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

import sandbox
from agent.api.intake import accept
from agent.api.schemas import RepairRequest
from agent.environment import Environment
from agent.failing_test import describe
from agent.feedback import render_trace, test_block
from agent.localize import rank_functions, rank_lines
from agent.mcp_server._limits import capped, tail_of
from agent.mcp_server._paths import allowed_path, project_of
from agent.mcp_server._results import (
    ExplainResult,
    FunctionScore,
    LineScore,
    RunPythonResult,
    RunTestsResult,
    TestEntry,
    TraceResult,
)
from agent.mcp_server._settings import McpSettings
from agent.nodes import PoolTracer
from agent.nodes.trace import focus_location
from agent.state import RunConfig
from agent.tasks import (
    Task,
    TaskError,
    TestReport,
    TestRunner,
    environment_problem,
    missing_name,
    narrowed_to,
)
from sandbox.trace_render import Format, render, render_json
from sandbox.tracer import Trace, TraceOptions, trace_call

_LIMITS = sandbox.Limits.model_fields
_TRACE = TraceOptions.model_fields
_RUN = RunConfig.model_fields
MESSAGE_CHARS = 1_500  # of each failed test's message in run_tests (its tail: the assertion and the location)
MAX_TESTS_LISTED = 2_000

PATH_RULE = (" A path on the server: absolute, or relative to its first allowed root (by default the directory it "
             "was started in); it must lie under an allowed root, symlinks resolved.")
PathArg = Annotated[str, Field(min_length=1, max_length=4096)]
TestTimeout = Annotated[float, _RUN["test_timeout_s"], Field(le=120, description="Per-test time limit in seconds "
                                                             "(stops an infinite loop).")]


class _Project(NamedTuple):
    task: Task
    config: RunConfig
    environment: Environment
    root: Path
    selection: list[str]


class SharedPool:
    """The server's warm sandbox pool (its configured backend) for the tools that run code on semcoder's own
    interpreter, opened at the first call (a host starting the server waits for nothing; a sandbox that cannot start
    is a tool error, not a server that will not start) and closed with the server."""

    def __init__(self, settings: McpSettings) -> None:
        self._settings = settings
        self._pool: sandbox.Pool | None = None
        self._lock = threading.Lock()

    def submit_job(self, job: sandbox.Job, *, urgent: bool = False) -> Future[sandbox.JobResult]:
        with self._lock:
            if self._pool is None:
                self._pool = sandbox.Pool(workers=self._settings.sandbox_workers,
                                          backend=self._settings.sandbox_backend)
        return self._pool.submit_job(job, urgent=urgent)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


class Toolbox:
    """The tools, bound to one server's settings and its shared sandbox pool."""

    def __init__(self, settings: McpSettings, pool: SharedPool) -> None:
        self.settings = settings
        self.pool = pool

    # -- run_python ---------------------------------------------------------------------------------------------

    def run_python(
        self,
        code: Annotated[str, Field(max_length=1_000_000, description="Python source, run as __main__.")],
        stdin: Annotated[str, Field(max_length=1_000_000, description="Text fed to the program's stdin.")] = "",
        timeout_s: Annotated[float, _LIMITS["wall_time_s"], Field(le=120, description="Wall-clock and CPU "
                                                                  "limit in seconds.")] = 10.0,
        memory_mb: Annotated[int, _LIMITS["memory_mb"], Field(le=8192)] = 1024,
        files: Annotated[dict[str, str], Field(max_length=100, description="Extra files in the program's "
                                               "working directory: relative path -> text.")] = {},  # noqa: B006
    ) -> RunPythonResult:
        """Run Python code in an isolated sandbox (no network, a private temporary directory, CPU, memory and time
        limits) and return how it ended: status, exit code, stdout, stderr, duration. The code cannot see or change
        the host's files. A crash, an exception or a timeout is a normal result (see `status`), not an error."""
        limits = sandbox.Limits(wall_time_s=timeout_s, cpu_time_s=timeout_s, memory_mb=memory_mb)
        with _infrastructure():
            result = sandbox.run_program(self.pool, code, stdin=stdin.encode(), files=dict(files), limits=limits)
        notes: list[str] = []
        stdout, note = capped(result.stdout, self.settings.max_output_chars, "stdout")
        notes += [note] if note else []
        stderr, note = capped(result.stderr, self.settings.max_output_chars, "stderr")
        notes += [note] if note else []
        return RunPythonResult(status=result.status, exit_code=result.exit_code, stdout=stdout, stderr=stderr,
                               stdout_truncated=result.stdout_truncated, stderr_truncated=result.stderr_truncated,
                               duration_s=round(result.duration_s, 4), isolation=result.isolation, notes=notes)

    # -- trace ----------------------------------------------------------------------------------------------------

    def trace(
        self,
        call: Annotated[str, Field(min_length=1, max_length=10_000, description="A Python expression evaluated in "
                                   "the module's namespace, e.g. 'mean([1, 2, 3])'; its execution is traced.")],
        file: Annotated[str | None, Field(max_length=4096, description="A .py file, loaded as a module (give "
                                          "`file` or `code`)." + PATH_RULE)] = None,
        code: Annotated[str | None, Field(max_length=1_000_000, description="Python source to load as the "
                                          "module, instead of `file`.")] = None,
        format: Annotated[Format, Field(description="json: every event with its locals; semcoder: the "
                                        "source annotated with the values each line saw (compact, best to reason "
                                        "over); blocks: state after each basic block; monologue: a step-by-step "
                                        "account; cwm: Code World Model's raw frames.")] = "json",
        max_events: Annotated[int, _TRACE["max_events"], Field(le=100_000)] = 10_000,
        max_depth: Annotated[int | None, _TRACE["max_depth"]] = None,
        timeout_s: Annotated[float, _TRACE["call_timeout_s"], Field(le=60)] = 5.0,
    ) -> TraceResult:
        """Trace one call line by line in the sandbox: load a module (a file or given code; its own top level runs
        untraced), evaluate `call` in its namespace and record every line it runs with the local variables at that
        moment, the return value or exception. Use it to see what the code really does on an input instead of
        guessing. An exception in the traced code is part of the result, not an error."""
        if (file is None) == (code is None):
            raise ToolError("give exactly one of `file` (a path) or `code` (source text)")
        filename = "<semcoder-trace>"
        if file is not None:
            path = allowed_path(file, self.settings.allowed_roots, "file")
            try:
                code = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ToolError(f"cannot read {file}: {exc}") from None
            filename = str(path)
        options = TraceOptions(max_events=max_events, max_depth=max_depth, call_timeout_s=timeout_s)
        with _infrastructure():
            traced = trace_call(code or "", call, options=options, filename=filename, runner=self.pool)
        notes: list[str] = []
        limit = self.settings.max_output_chars
        if format == "json":
            rendered, note = _json_within(traced, limit)
        else:
            rendered, note = capped(render(traced, format), limit, f"the {format} rendering")
        notes += [note] if note else []
        output, note = capped(traced.output, limit, "the program's output")
        notes += [note] if note else []
        if traced.truncated:
            notes.append(f"the tracer kept the first {max_events} events (max_events) or hit its byte cap; the "
                         "call ran to its end")
        return TraceResult(call=call, format=format, return_repr=traced.return_repr, exception=traced.exception,
                           events=len(traced.events), tracer_truncated=traced.truncated, rendered=rendered,
                           output=output, notes=notes)

    # -- run_tests ------------------------------------------------------------------------------------------------

    def run_tests(
        self,
        path: Annotated[PathArg, Field(description="A project directory (all its tests) or one test file (its "
                                       "tests; the project is the nearest directory above it with a pyproject.toml, "
                                       "setup.py, pytest.ini or .git)." + PATH_RULE)],
        select: Annotated[list[str], Field(max_length=1000, description="pytest arguments narrowing the run: node "
                                           "ids relative to the project (tests/test_x.py::test_y), paths, "
                                           "'-k', 'EXPR'.")] = [],  # noqa: B006
        test_timeout_s: TestTimeout = 5.0,
    ) -> RunTestsResult:
        """Run a Python project's pytest tests in the sandbox, with the project's own virtualenv when it has one
        (.venv/, venv/, env/, poetry), and return each test's outcome, duration and a short failure message. The
        project's files are never modified."""
        project = self._project(path, select, test_timeout_s)
        with self._runner(project) as (runner, _):
            report = runner.run(project.task, [project.task.files], coverage=False)[0]
        return self._tests_result(project, report)

    # -- explain_failure ------------------------------------------------------------------------------------------

    def explain_failure(
        self,
        path: Annotated[PathArg, Field(description="A project directory, or one test file of it." + PATH_RULE)],
        test_id: Annotated[str | None, Field(max_length=4096, description="The failing test to explain, as a "
                                             "pytest node id relative to the project (tests/test_x.py::test_y); "
                                             "default: the first failing test.")] = None,
        format: Annotated[Literal["semcoder", "blocks"], Field(description="How the trace is rendered: "
                                                               "semcoder (values inline in the source) or blocks "
                                                               "(state after each block).")] = "semcoder",
        test_timeout_s: TestTimeout = 5.0,
    ) -> ExplainResult:
        """Explain a failing test as semcoder's repair loop sees it: run the tests with line coverage, rank the
        code's functions by how suspicious they are (lines the failing tests ran and the passing ones did not), pick
        the function the fix most likely belongs in, reduce the failure to the call the test makes and what it
        expected, and trace that call through the code for real. Read-only: nothing is patched."""
        select = [test_id.split("::", 1)[0]] if test_id else []
        project = self._project(path, select, test_timeout_s)
        with self._runner(project) as (runner, pool):
            report = runner.run(project.task, [project.task.files])[0]
            return self._explained(project, report, test_id, format, pool)

    # -- shared ---------------------------------------------------------------------------------------------------

    def _project(self, path: str, select: list[str], test_timeout_s: float) -> _Project:
        """The project's task as `semcoder serve` accepts one (intake.accept), narrowed to the selection."""
        roots = self.settings.allowed_roots
        resolved = allowed_path(path, roots)
        root, selection = resolved, list(select)
        if resolved.is_file():
            root = project_of(resolved, roots)
            selection = [resolved.relative_to(root).as_posix(), *select]
        try:
            accepted = accept(RepairRequest(project_path=str(root), test_timeout_s=test_timeout_s), self.settings)
        except TaskError as exc:
            raise ToolError(str(exc)) from None
        task = narrowed_to(accepted.task, selection) if selection else accepted.task
        return _Project(task, accepted.config, accepted.environment, root, selection)

    @contextlib.contextmanager
    def _runner(self, project: _Project) -> Iterator[tuple[TestRunner, sandbox.Pool]]:
        with _infrastructure(), sandbox.Pool(workers=self.settings.sandbox_workers,
                                             backend=self.settings.sandbox_backend,
                                             python=project.config.python) as pool:
            yield TestRunner(pool, test_timeout_s=project.config.test_timeout_s), pool

    def _tests_result(self, project: _Project, report: TestReport) -> RunTestsResult:
        counts = {kind: sum(o.outcome == kind for o in report.outcomes) for kind in ("passed", "failed", "error",
                                                                                       "skipped")}
        outcomes = report.outcomes
        notes = list(project.task.notes)
        if len(outcomes) > MAX_TESTS_LISTED:  # the failures first: they are what the caller acts on
            outcomes = sorted(outcomes, key=lambda o: o.outcome not in ("failed", "error"))[:MAX_TESTS_LISTED]
            notes.append(f"{MAX_TESTS_LISTED} of {len(report.outcomes)} tests listed (failures first)")
        problem, note = capped(report.problem, self.settings.max_output_chars, "problem")
        notes += [note] if note else []
        return RunTestsResult(
            project=str(project.root), selection=project.task.test_paths, environment=project.environment.describe(),
            passed=counts["passed"], failed=counts["failed"], errors=counts["error"], skipped=counts["skipped"],
            duration_s=round(report.duration_s, 3), problem=problem, tampered=report.tampered[:20],
            tests=[TestEntry(id=o.id, outcome=o.outcome, duration_s=round(o.duration_s, 4),
                             message=tail_of(o.message, MESSAGE_CHARS), line=o.test_line) for o in outcomes],
            notes=notes)

    def _explained(self, project: _Project, report: TestReport, test_id: str | None, fmt: str,
                   pool: sandbox.Pool) -> ExplainResult:
        task, limit = project.task, self.settings.max_output_chars
        common: dict[str, Any] = {"passed": report.passed, "total": report.total,
                                  "environment": project.environment.describe(), "notes": list(task.notes)}
        problem = environment_problem(report, set(task.editable))
        if problem:
            return ExplainResult(test_id=None, problem=capped(problem, limit, "problem")[0], **common)
        if test_id is not None:
            named = [o for o in report.outcomes if o.id == test_id]
            if not named:
                shown = ", ".join(o.id for o in report.outcomes[:10])
                raise ToolError(f"no test {test_id!r} in {project.root} (ran: {shown or 'none'})")
            outcome = named[0]
            if outcome.outcome not in ("failed", "error"):
                return ExplainResult(test_id=test_id, outcome=outcome.outcome, **common | {
                    "notes": [*task.notes, f"{test_id} {outcome.outcome}: nothing to explain"]})
        elif report.failing:
            outcome = report.failing[0]
        else:
            return ExplainResult(test_id=None, **common | {
                "notes": [*task.notes, f"no failing test: all {report.total} tests pass"]})
        # The trace node's steps (agent/nodes/trace.py), on the original files.
        sources = task.files
        suspects = rank_lines(report, {p: sources[p] for p in task.editable})
        failed = describe(outcome, sources)
        missing = missing_name(failed.message, task.editable) if task.kind == "project" else None
        rendered, notes, traced_exception = "", common["notes"], None
        if missing is not None:
            file, function = missing
            notes.append(f"the test uses {function!r}, which {file} does not define: the fix adds it there")
        else:
            file, function = focus_location(task, suspects, failed)
            tracer = _Recording(PoolTracer(pool))
            with _infrastructure():
                rendered = render_trace(tracer, "trace" if fmt == "semcoder" else "blocks", sources[file], file,
                                        failed)
            if tracer.last is not None and tracer.last.exception is not None:
                traced_exception = tracer.last.exception
                notes.append(f"the traced call raised {traced_exception} (the call is traced in {file}'s namespace, "
                             "as the repair loop traces it, with the test module's literal constants in place; "
                             "other names the test module defines are not there)"
                             if traced_exception.startswith("NameError") else f"the traced call raised "
                             f"{traced_exception}")
            if failed.call is None:
                notes.append("no single call could be derived from the test (no `assert f(...) == value`), so "
                             "nothing was traced; `failed_test` is the test's source")
        trace_text, note = capped(rendered, limit, "the trace")
        notes += [note] if note else []
        return ExplainResult(
            test_id=outcome.id, outcome=outcome.outcome, message=tail_of(outcome.message, MESSAGE_CHARS),
            failed_test=capped(test_block(failed), limit, "failed test")[0], call=failed.call,
            expected=failed.expected, focus_file=file, focus_function=function,
            suspects=[FunctionScore(file=f, function=fn, score=round(s, 4)) for f, fn, s in rank_functions(suspects)[:5]],
            suspect_lines=[LineScore(file=s.file, line=s.line, function=s.function, score=round(s.score, 4))
                           for s in suspects[:10]],
            trace_format=fmt if rendered else "", trace=trace_text, trace_exception=traced_exception, **common)


class _Recording:
    """The run's tracer, keeping the last Trace: render_trace (the loop's) returns only the text, and the caller
    should also know when the traced call raised."""

    def __init__(self, tracer: PoolTracer) -> None:
        self.tracer, self.last = tracer, None

    def trace(self, code: str, call: str) -> Trace:
        self.last = self.tracer.trace(code, call)
        return self.last


@contextlib.contextmanager
def _infrastructure() -> Iterator[None]:
    """The sandbox failing (no bwrap, Docker down, an interpreter it cannot run) is the server's problem, said as a
    tool error; the code under test failing never raises here (it is in the result)."""
    try:
        yield
    except sandbox.SandboxError as exc:
        raise ToolError(f"sandbox failure (infrastructure, not the code under test): {exc}") from None


def _json_within(traced: Trace, limit: int) -> tuple[str, str | None]:
    """`semcoder trace`'s JSON object, still valid JSON when cut: whole events are dropped from the end."""
    text = render_json(traced)
    if len(text) <= limit:
        return text, None
    data = traced.cli_json()
    events: list[Any] = data["events"]  # type: ignore[assignment]
    keep = len(events)
    while keep > 0:
        keep = min(keep - 1, int(keep * limit / len(text) * 0.95))
        text = json.dumps({**data, "events": events[:keep], "truncated": True})
        if len(text) <= limit:
            break
    return text, (f"json rendering cut to its first {keep} of {len(events)} events to fit {limit} characters "
                  "(pass a smaller max_events or max_depth, or use format 'semcoder')")


def register_tools(server: MCPServer, toolbox: Toolbox) -> None:
    """Adds the tools to `server`. More tools (a `repair` with progress notifications) and resources (run history)
    are registered next to these, by functions of the same shape, in `build_server` (agent/mcp_server/_server.py)."""
    # Read-only for the host: the code runs in the sandbox, and no tool writes to the allowed roots.
    safe = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
    for tool, title in ((toolbox.run_python, "Run Python in a sandbox"), (toolbox.trace, "Trace a call line by line"),
                        (toolbox.run_tests, "Run a project's tests"),
                        (toolbox.explain_failure, "Explain a failing test")):
        server.add_tool(tool, name=tool.__name__, title=title, description=inspect.cleandoc(tool.__doc__ or ""),
                        annotations=safe, structured_output=True)
