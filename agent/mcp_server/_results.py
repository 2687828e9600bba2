"""What each tool answers: pydantic models, so every tool publishes an output schema and returns structured content
(with the same JSON as text for hosts that read only text). Descriptions are written for the model that reads them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from sandbox import Isolation, Status


class RunPythonResult(BaseModel):
    """How a sandboxed program ended, in the supervisor's words (nothing the program prints can change these)."""

    status: Status = Field(description="ok: exited 0; error: nonzero exit or killed (exit_code -9: the memory "
                           "limit, or a kill); timeout: its time ran out; memory / output_limit: a limit stopped the "
                           "whole sandbox.")
    exit_code: int | None = Field(description="The real exit code; a negative number is the signal that killed it.")
    stdout: str
    stderr: str
    stdout_truncated: bool = Field(description="The program wrote past the sandbox's output limit on stdout.")
    stderr_truncated: bool
    duration_s: float
    isolation: Isolation = Field(description="full: namespaces, seccomp, cgroups; partial: some were unavailable.")
    notes: list[str] = Field(default_factory=list, description="What this answer left out (long output is cut).")


class TraceResult(BaseModel):
    """A call's real line-level execution, rendered."""

    call: str
    format: str
    return_repr: str | None = Field(description="repr of the call's value; null if it raised.")
    exception: str | None = Field(description="'TypeName: message' of an exception escaping the call, else null.")
    events: int = Field(description="Events the tracer recorded (call, line, return, exception).")
    tracer_truncated: bool = Field(description="The tracer stopped recording at max_events (the call ran to its "
                                   "end regardless).")
    rendered: str = Field(description="The trace in the requested format: json (an object with return_repr, "
                          "exception, events [{event, func, line, locals}], truncated), semcoder (the source "
                          "annotated with the values each line saw), blocks (state after each block) or monologue "
                          "(a step-by-step account).")
    output: str = Field(description="What the program printed during the call.")
    notes: list[str] = Field(default_factory=list, description="What this answer left out.")


class TestEntry(BaseModel):
    __test__ = False  # not a pytest class

    id: str = Field(description="pytest node id, relative to the project root.")
    outcome: Literal["passed", "failed", "error", "skipped"]
    duration_s: float
    message: str = Field("", description="The end of the failure's report (assertion, traceback tail).")
    line: int | None = Field(None, description="Line of the test file where it failed.")


class RunTestsResult(BaseModel):
    """The outcome of one pytest run in the sandbox, per test."""

    project: str = Field(description="The project directory the tests ran in (resolved).")
    selection: list[str] = Field(description="The pytest arguments used (empty: pytest's own discovery).")
    environment: str = Field(description="The interpreter the tests ran with (the project's venv if it has one).")
    passed: int
    failed: int
    errors: int
    skipped: int
    duration_s: float
    problem: str = Field("", description="Why the tests could not run at all (collection error, no tests, crash); "
                         "empty when they ran.")
    tampered: list[str] = Field(default_factory=list, description="Signs that the code under test interfered "
                                "with its own test run: these outcomes are not to be trusted.")
    tests: list[TestEntry]
    notes: list[str] = Field(default_factory=list, description="What this answer left out, and notes on the project.")


class FunctionScore(BaseModel):
    file: str
    function: str
    score: float = Field(description="Ochiai suspiciousness of the function's most suspicious line, 0..1.")


class LineScore(BaseModel):
    file: str
    line: int
    function: str | None
    score: float


class ExplainResult(BaseModel):
    """A failing test explained the way semcoder's repair loop sees it before it patches."""

    test_id: str | None = Field(description="The failing test explained; null when no test fails.")
    outcome: str | None = None
    passed: int = 0
    total: int = 0
    message: str = Field("", description="The end of the failure's report.")
    failed_test: str = Field("", description="The failure as SemCoder's prompt shows it: `retv = <call>` / "
                             "`assert retv == <expected>`, or the test's source where no single call is derived.")
    call: str | None = Field(None, description="The call the test makes to the code under repair (traced).")
    expected: str | None = None
    focus_file: str | None = Field(None, description="Where the fix most likely goes: the file ...")
    focus_function: str | None = Field(None, description="... and function (the called function if suspicious, "
                                       "else the most suspicious one).")
    suspects: list[FunctionScore] = Field(default_factory=list, description="Top functions by spectrum-based "
                                          "fault localization (lines the failing tests ran and passing ones did not).")
    suspect_lines: list[LineScore] = Field(default_factory=list)
    trace_format: str = ""
    trace: str = Field("", description="The real execution of `call` over the focus file, rendered; empty when no "
                       "single call could be derived from the test.")
    trace_exception: str | None = Field(None, description="'TypeName: message' when the traced call raised.")
    environment: str = ""
    problem: str = Field("", description="Why the tests cannot run (then nothing is explained).")
    notes: list[str] = Field(default_factory=list)
