"""A deterministic forward "execution simulation" written from a trace, usable as monologue text.

Each executed line becomes one sentence citing `[L{line + line_offset}]` (SemCoder's prompts number
lines with an offset of 4): what changed, why a branch or loop went the way it did, what was returned
or raised. A line or call seen more than three times is told for its first three and its last
occurrence; the ones in between collapse into one `...` step.
"""

from __future__ import annotations

import ast
from collections import Counter

from sandbox._trace_model import Trace, TraceEvent
from sandbox._trace_steps import LineRun, SourceMap, in_body, line_runs

KEEP_FIRST = 3


def render_monologue(trace: Trace, line_offset: int = 0) -> str:
    teller = _Teller(trace, SourceMap(trace.source), line_offset)
    out = ["### Execution Simulation", f"Let's simulate `{trace.call}` step by step."]
    out.extend(teller.steps())
    out.extend(["", "### Conclusion", _conclusion(trace)])
    return "\n".join(out)


class _Teller:
    def __init__(self, trace: Trace, source: SourceMap, line_offset: int) -> None:
        self._trace = trace
        self._source = source
        self._offset = line_offset
        self._runs = [r for r in line_runs(trace) if r.closed_at >= 0]

    def steps(self) -> list[str]:
        items = self._timeline()
        totals = Counter(key for key, _ in items)
        seen: Counter = Counter()
        out: list[str] = []
        skipped = 0
        for key, sentence in items:
            seen[key] += 1
            if seen[key] <= KEEP_FIRST or seen[key] == totals[key]:
                if skipped:
                    out.append(f"- ... ({skipped} similar steps of the repetition left out) ...")
                    skipped = 0
                out.append(sentence)
            else:
                skipped += 1
        if skipped:
            out.append(f"- ... ({skipped} similar steps of the repetition left out) ...")
        return out

    def _timeline(self) -> list[tuple[object, str]]:
        """(compression key, sentence) in execution order: calls when they start, lines when they end."""
        closing: dict[int, list[LineRun]] = {}
        for run in self._runs:
            closing.setdefault(run.closed_at, []).append(run)
        items: list[tuple[object, str]] = []
        for index, event in enumerate(self._trace.events):
            items.extend((run.line, self._line(run)) for run in closing.get(index, []))
            if event.event == "call":
                items.append((("call", event.func), self._call(event)))
        return items

    def _call(self, event: TraceEvent) -> str:
        args = ", ".join(f"`{name} = {text}`" for name, text in event.locals.items())
        verb = "is called" if event.depth == 1 else "is entered"
        with_args = f" with {args}" if args else ""
        return f"{_indent(event.depth)}- The function `{event.func}` {verb}{with_args}."

    def _line(self, run: LineRun) -> str:
        label = f"[L{run.line + self._offset}]"
        where = f" (in `{run.func}`)" if run.depth > 1 else ""
        what = self._what_happened(run)
        return f"{_indent(run.depth)}- {label}{where}: `{self._source.text(run.line)}` — {what}."

    def _what_happened(self, run: LineRun) -> str:
        statement = self._source.statement(run.line)
        if run.next_event == "exception":
            return f"raises `{run.value}`"
        if run.next_event == "return":
            verb = "yields" if "yield" in self._source.text(run.line) else "returns"
            return f"{verb} `{run.value}`" if run.value is not None else "ends the frame by an exception"
        if isinstance(statement, ast.If | ast.While):
            return self._branch(statement, run)
        if isinstance(statement, ast.For | ast.AsyncFor):
            if in_body(statement, run.next_line):
                return f"takes the next item: {_loop_target(statement, run)}"
            return "has no more items, so the loop ends"
        return _changes(run) if run.changes else "runs without changing any local variable"

    def _branch(self, statement: ast.If | ast.While, run: LineRun) -> str:
        taken = in_body(statement, run.next_line)
        condition = self._source.segment(statement.test)
        names = sorted({n.id for n in ast.walk(statement.test) if isinstance(n, ast.Name) and n.id in run.before})
        values = ", ".join(f"`{name} = {run.before[name]}`" for name in names)
        because = f" (with {values})" if values else ""
        if isinstance(statement, ast.While):
            outcome = "so the loop body runs again" if taken else "so the loop ends"
        else:
            outcome = "so its body runs" if taken else "so its body is skipped"
        truth = "true" if taken else "false"
        return f"checks `{condition}`, which is {truth}{because}, {outcome}"


def _changes(run: LineRun) -> str:
    parts = []
    for name, text in run.changes.items():
        if name in run.before:
            parts.append(f"`{name}` changes from `{run.before[name]}` to `{text}`")
        else:
            parts.append(f"`{name}` is set to `{text}`")
    return "; ".join(parts) if parts else "changes no local variable"


def _loop_target(statement: ast.For | ast.AsyncFor, run: LineRun) -> str:
    names = [n.id for n in ast.walk(statement.target) if isinstance(n, ast.Name) and n.id in run.after]
    return ", ".join(f"`{name} = {run.after[name]}`" for name in names) or _changes(run)


def _indent(depth: int) -> str:
    return "  " * (depth - 1)


def _conclusion(trace: Trace) -> str:
    note = " (the trace was cut at its cap; the outcome is from the complete run)" if trace.truncated else ""
    if trace.exception is not None:
        return f"The call `{trace.call}` raises `{trace.exception}`{note}."
    return f"The call `{trace.call}` returns `{trace.return_repr}`{note}."
