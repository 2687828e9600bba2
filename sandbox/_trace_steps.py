"""What each executed line did: the trace's events folded into line runs (shared by the renderers)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from sandbox._trace_model import Trace, TraceEvent


@dataclass
class LineRun:
    """One execution of one line in one activation: the locals before it and after it."""

    start: int  # index of its line event
    frame: int
    depth: int
    func: str
    line: int
    before: dict[str, str]
    after: dict[str, str] = field(default_factory=dict)
    closed_at: int = -1  # index of the next event of the same activation; -1 if the trace ends first
    next_event: str | None = None  # "line", "return" or "exception"
    next_line: int | None = None
    value: str | None = None  # the return value or exception of that next event

    @property
    def changes(self) -> dict[str, str]:
        return {name: text for name, text in self.after.items() if self.before.get(name) != text}


def line_runs(trace: Trace) -> list[LineRun]:
    """Every line execution, in the order the lines started."""
    open_runs: dict[int, LineRun] = {}
    runs: list[LineRun] = []
    for index, event in enumerate(trace.events):
        pending = open_runs.pop(event.frame, None)
        if pending is not None:
            _close(pending, index, event)
        if event.event == "line":
            run = LineRun(index, event.frame, event.depth, event.func, event.line, event.locals)
            open_runs[event.frame] = run
            runs.append(run)
    return runs


def _close(run: LineRun, index: int, event: TraceEvent) -> None:
    run.after = event.locals
    run.closed_at = index
    run.next_event = event.event
    run.next_line = event.line
    run.value = event.value


def top_call(trace: Trace) -> TraceEvent | None:
    """The call event of the first frame the call expression entered."""
    return next((e for e in trace.events if e.event == "call" and e.depth == 1), None)


def final_event(trace: Trace, kind: str) -> TraceEvent | None:
    """The last event of `kind` in the first depth-1 activation (where the outcome left the code)."""
    first = top_call(trace)
    if first is None:
        return None
    matching = [e for e in trace.events if e.frame == first.frame and e.event == kind]
    return matching[-1] if matching else None


class SourceMap:
    """Statements of the traced source by line: their text and, for branches, what they test."""

    def __init__(self, source: str) -> None:
        self.lines = source.splitlines()
        self._statements: dict[int, ast.stmt] = {}
        self._next_in_body: dict[int, int | None] = {}
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return
        self._index(tree)

    def _index(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            for body in _bodies(node):
                for position, statement in enumerate(body):
                    self._statements.setdefault(statement.lineno, statement)
                    following = body[position + 1].lineno if position + 1 < len(body) else None
                    self._next_in_body[statement.lineno] = following

    def text(self, line: int) -> str:
        return self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""

    def statement(self, line: int) -> ast.stmt | None:
        return self._statements.get(line)

    def falls_through_to(self, line: int) -> int | None:
        """The line control reaches next when `line` is a simple statement, else None."""
        statement = self._statements.get(line)
        if statement is None or isinstance(statement, _COMPOUND):
            return None
        return self._next_in_body.get(line)

    def segment(self, node: ast.AST) -> str:
        start, end = node.lineno, node.end_lineno or node.lineno
        if start == end:
            return self.lines[start - 1][node.col_offset : node.end_col_offset]
        return " ".join(line.strip() for line in self.lines[start - 1 : end])


_COMPOUND = (
    ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.With, ast.AsyncWith, ast.Match,
    ast.Return, ast.Raise, ast.Break, ast.Continue, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
)  # fmt: skip


def _bodies(node: ast.AST) -> list[list[ast.stmt]]:
    found = []
    for name in ("body", "orelse", "finalbody"):
        value = getattr(node, name, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            found.append(value)
    found.extend(handler.body for handler in getattr(node, "handlers", []))
    found.extend(case.body for case in getattr(node, "cases", []))
    return found


def in_body(statement: ast.stmt, line: int | None) -> bool:
    """Whether `line` lies inside the statement's first body (the taken branch / the loop body)."""
    body = getattr(statement, "body", None)
    if line is None or not body:
        return False
    return body[0].lineno <= line <= (body[-1].end_lineno or body[-1].lineno)
