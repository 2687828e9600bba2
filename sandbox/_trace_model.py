"""The tracer's boundary types: what to trace with which caps, and the trace that comes back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventKind = Literal["call", "line", "return", "exception"]


class TraceOptions(BaseModel):
    """Caps and budgets of one traced call (each row of a batch gets the same)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_events: int = Field(10_000, gt=0, description="Events kept (the first ones); past it `truncated` is set.")
    max_bytes: int = Field(
        4_000_000, gt=0, description="Approximate size of the kept events (names + reprs); past it `truncated`."
    )
    max_depth: int | None = Field(
        None, gt=0, description="Deepest traced frame, 1 = called by the call expression; None = any depth."
    )
    repr_chars: int = Field(1_000, gt=0, description="Each repr (locals, return value, message) is cut to this.")
    repr_timeout_s: float = Field(0.25, gt=0, description="Time budget of one user-defined __repr__/__str__.")
    call_timeout_s: float = Field(5.0, gt=0, description="Wall budget of one call (module load included).")
    output_chars: int = Field(65_536, ge=0, description="How much of the program's own stdout/stderr is kept.")
    memory_mb: int = Field(1024, gt=0, description="Memory of the sandboxed process that runs the rows.")
    states_only: bool = Field(
        False, description="Only what the JSON format shows (each event's locals): an inner frame's return value "
        "and an exception event's message are left out (their events' `value` is None); the call's own result is "
        "kept. `trace_batch_json` sets it.")
    engine: Literal["auto", "settrace", "monitoring"] = Field(
        "auto", description="How events are taken: auto = sys.monitoring on Python 3.12+ (the faster there), "
        "sys.settrace before; both give the same trace. monitoring on a Python < 3.12 fails to start.")


class TraceRow(BaseModel):
    """One batch input line: the program and the expression to evaluate in its namespace."""

    model_config = ConfigDict(extra="forbid")

    code: str
    call: str


class TraceEvent(BaseModel):
    """One event of a traced frame, with a snapshot of that frame's locals taken at the event."""

    model_config = ConfigDict(frozen=True)

    event: EventKind = Field(description="call: a frame starts or resumes; line: before the line runs.")
    func: str = Field(description="Qualified name of the frame's code (f, f.<locals>.<lambda>, A.m).")
    line: int = Field(description="1-based line in the traced source.")
    locals: dict[str, str] = Field(description="repr of every local (cell variables included), cut.")
    frame: int = Field(0, description="Activation number: one per entry into a frame (each generator resume too).")
    depth: int = Field(1, description="1 for frames called by the call expression, 2 for the ones they call, ...")
    value: str | None = Field(
        None,
        description="return: repr of the returned or yielded value, None if the frame ended by an exception; "
        "exception: 'TypeName: message'.",
    )


class Trace(BaseModel):
    """The real execution of one call: its outcome and the events of the traced code."""

    return_repr: str | None = Field(description="repr of the call's value; None if it raised.")
    exception: str | None = Field(description="'TypeName: message' of any BaseException escaping the call.")
    events: list[TraceEvent]
    truncated: bool = Field(description="An event or byte cap was hit; the call still ran to its end.")
    source: str = Field("", description="The traced code (the renderers annotate it).")
    call: str = Field("", description="The call expression.")
    output: str = Field("", description="What the program wrote to stdout/stderr during the call (capped).")

    def cli_json(self) -> dict[str, object]:
        """The one object `semcoder trace` prints (and each line of `trace-batch`)."""
        return {
            "return_repr": self.return_repr,
            "exception": self.exception,
            "events": [
                {"event": e.event, "func": e.func, "line": e.line, "locals": e.locals} for e in self.events
            ],
            "truncated": self.truncated,
        }
