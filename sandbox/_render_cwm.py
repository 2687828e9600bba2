"""Meta's Code World Model (CWM) trace layout: the traced source as context, then raw frames.

Layout, as published in facebookresearch/cwm at 7930e02 (PROMPTING_GUIDE.md, "Trace Prediction", and
demos/cwmdbg.py, which builds the prompts token by token):

    <|trace_context_start|>$CONTEXT<|frame_sep|>
    <|call_sep|>$LOCALS<|action_sep|>$SOURCE<|frame_sep|>
    <|line_sep|>$LOCALS<|action_sep|>$SOURCE<|frame_sep|>
    <|return_sep|><|action_sep|>$SOURCE<|arg_sep|>$VALUE<|frame_sep|>
    <|exception_sep|><|action_sep|>$SOURCE<|arg_sep|>$VALUE<|frame_sep|>
    <|end_of_text|>

$CONTEXT is the source with the entry point marked by `  # << START_OF_TRACE`; $LOCALS is a JSON object of
name -> repr (values are always JSON strings); $VALUE is the JSON-encoded repr; $SOURCE is the line about to
run (call/line frames, with its newline) or the line that returned/raised. cwmdbg.py keeps locals "in
diff-based representation": a value unchanged since the previous frame of the same scope is written "..",
and a call or return (a change of scope) ends the diffing, so the first frame after one repeats every value.

The published material names no numbers for its caps on long strings and long loops, so ours are our own
and explicit (CwmCaps): each value's repr is cut to `value_chars` with a trailing "...", and a line run more
than `line_visits` times in one activation keeps only its first `line_visits` frames (the frames of a long
loop past the cap are left out; the next frame shown is diffed against the last one shown).
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from sandbox._trace_model import Trace, TraceEvent
from sandbox._trace_steps import top_call

TRACE_CONTEXT_START = "<|trace_context_start|>"
FRAME_SEP = "<|frame_sep|>"
CALL_SEP = "<|call_sep|>"
LINE_SEP = "<|line_sep|>"
RETURN_SEP = "<|return_sep|>"
EXCEPTION_SEP = "<|exception_sep|>"
ACTION_SEP = "<|action_sep|>"
ARG_SEP = "<|arg_sep|>"
END_OF_TEXT = "<|end_of_text|>"
START_MARKER = "  # << START_OF_TRACE"
UNCHANGED = ".."
_KIND_SEP = {"call": CALL_SEP, "line": LINE_SEP, "return": RETURN_SEP, "exception": EXCEPTION_SEP}


class CwmCaps(BaseModel):
    """Caps of a CWM rendering (ours: CWM publishes the layout, not its numbers)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value_chars: int = Field(200, gt=3, description="Longest repr of one value; longer ones end in '...'.")
    line_visits: int | None = Field(
        20, gt=0, description="Frames kept per line per activation (a long loop's later ones are left out)."
    )


def render_cwm(trace: Trace, caps: CwmCaps | None = None, *, context: bool = True) -> str:
    """The trace in CWM's layout; `context=False` gives the frames alone (from the first `<|frame_sep|>` on,
    without `<|end_of_text|>`), the part a model writes after a prompt that already shows the code."""
    caps = caps or CwmCaps()
    lines = trace.source.split("\n")
    frames = "".join(frame + FRAME_SEP for frame in _frames(trace, lines, caps))
    if not context:
        return FRAME_SEP + frames
    return TRACE_CONTEXT_START + _context(trace, lines) + FRAME_SEP + frames + END_OF_TEXT


def _context(trace: Trace, lines: list[str]) -> str:
    first = top_call(trace)
    marked = list(lines)
    if first is not None and 0 < first.line <= len(marked):
        marked[first.line - 1] += START_MARKER
    return "\n".join(marked)


def _frames(trace: Trace, lines: list[str], caps: CwmCaps) -> list[str]:
    out: list[str] = []
    previous: TraceEvent | None = None  # the last frame written, the base of the diff
    visits: dict[tuple[int, int], int] = {}
    for event in trace.events:
        if event.event == "line" and caps.line_visits is not None:
            key = (event.frame, event.line)
            visits[key] = visits.get(key, 0) + 1
            if visits[key] > caps.line_visits:
                continue
        source = lines[event.line - 1] if 0 < event.line <= len(lines) else ""
        if event.event in ("call", "line"):
            same_scope = (previous is not None and previous.frame == event.frame
                          and previous.event in ("call", "line"))
            shown = {name: _value(text, caps)
                     if not (same_scope and previous is not None and previous.locals.get(name) == text)
                     else UNCHANGED for name, text in event.locals.items()}
            out.append(f"{_KIND_SEP[event.event]}{json.dumps(shown)}{ACTION_SEP}{source}\n")
        else:
            value = event.value if event.value is not None else "None"
            out.append(f"{_KIND_SEP[event.event]}{ACTION_SEP}{source}{ARG_SEP}{json.dumps(_value(value, caps))}")
        previous = event
    return out


def _value(text: str, caps: CwmCaps) -> str:
    return text if len(text) <= caps.value_chars else text[: caps.value_chars - 3] + "..."
