"""SemCoder's inline "concise trace": the source with each executed line's state changes as comments.

Follows the released data construction (ARiSE-Lab/SemCoder experiments/construct_trace.py): values
are the reprs turned into JSON the way that script reads PySnooper's log (so lists of strings get
double quotes and other strings lose their quotes), the def line carries `# [INPUT] {...} [/INPUT]`,
each execution of a line that changed locals gets `[STATE-k] {...} [/STATE-k]` with k counting state
changes in order, the return line gets `[OUTPUT] v [/OUTPUT]`, and a line with more than three states
keeps the first two, ` ... ` and the last. Unlike the script, which attributes states by parsing one
log, states here are attributed per frame, so nested calls do not shift them onto the wrong line.
"""

from __future__ import annotations

import json

from sandbox._trace_model import Trace
from sandbox._trace_steps import final_event, line_runs, top_call


def render_semcoder(trace: Trace) -> str:
    annotations: dict[int, list[str]] = {}
    for order, run in enumerate(r for r in _by_close(trace) if r.changes):
        state = json.dumps({name: json_value(text) for name, text in run.changes.items()})
        annotations.setdefault(run.line, []).append(f"[STATE-{order}] {state} [/STATE-{order}]")
    _add_outcome(trace, annotations)
    first = top_call(trace)
    input_line = first.line if first else None
    lines = []
    for number, text in enumerate(trace.source.split("\n"), start=1):
        if number == input_line:
            inputs = {name: json_value(value) for name, value in first.locals.items()}
            text += f" # [INPUT] {json.dumps(inputs)} [/INPUT]"
        if number in annotations:
            text += " # " + _concise(annotations[number])
        lines.append(text)
    return "\n".join(lines)


def _by_close(trace: Trace):
    """Line runs in the order their changes became visible (the order PySnooper logs them)."""
    runs = [r for r in line_runs(trace) if r.closed_at >= 0]
    return sorted(runs, key=lambda r: r.closed_at)


def _add_outcome(trace: Trace, annotations: dict[int, list[str]]) -> None:
    returned = final_event(trace, "return")
    if trace.return_repr is not None and returned is not None:
        output = output_value(json_value(trace.return_repr))
        annotations.setdefault(returned.line, []).append(f"[OUTPUT] {output} [/OUTPUT]")
    raised = final_event(trace, "exception")
    if trace.exception is not None and raised is not None:
        annotations.setdefault(raised.line, []).append(f"[EXCEPTION] {trace.exception} [/EXCEPTION]")


def _concise(parts: list[str]) -> str:
    states = [p for p in parts if p.startswith("[STATE")]
    rest = [p for p in parts if not p.startswith("[STATE")]
    if len(states) > 3:
        states = [*states[:2], " ... ", states[-1]]
    return "".join(states + rest)


def json_value(text: str) -> object:
    """A repr read back the way SemCoder's trace builder reads PySnooper's values."""
    if text.startswith("[") and text.endswith("]"):
        text = text.replace("'", '"')
    try:
        return json.loads(text)
    except ValueError:
        pass
    constants = {"None": None, "''": "", "True": True, "False": False}
    if text in constants:
        return constants[text]
    if text.startswith("'"):
        return text[1:-1]
    return text


def output_value(value: object) -> str:
    """A value as the [OUTPUT] tag shows it: strings quoted unless they already look quoted."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, str):
        wrapped = any(value.startswith(a) and value.endswith(b) for a, b in ('""', "''", "()", "{}"))
        return value if wrapped else f'"{value}"'
    return json.dumps(value)
