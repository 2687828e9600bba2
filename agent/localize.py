"""Spectrum-based fault localization (Ochiai) from the lines each passing and failing test ran."""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from collections.abc import Mapping

from pydantic import BaseModel

from agent.splice import qualified_defs
from agent.tasks import TestReport


class Suspect(BaseModel):
    """A line under suspicion; `function` is the innermost enclosing def (None at module level)."""

    file: str
    line: int
    score: float
    function: str | None = None


def ochiai(failed_cover: int, passed_cover: int, total_failed: int) -> float:
    """Ochiai's coefficient: failed(s) / sqrt(total_failed * (failed(s) + passed(s)))."""
    denominator = math.sqrt(total_failed * (failed_cover + passed_cover))
    return failed_cover / denominator if denominator else 0.0


def rank_lines(report: TestReport, sources: Mapping[str, str]) -> list[Suspect]:
    """Lines run by at least one failing test, most suspicious first (ties: file order, then line)."""
    failing = {o.id for o in report.failing}
    passing = report.passing_ids()
    failed_counts: Counter[tuple[str, int]] = Counter()
    passed_counts: Counter[tuple[str, int]] = Counter()
    for test, lines in report.coverage.items():
        counts = failed_counts if test in failing else passed_counts if test in passing else None
        if counts is not None:
            counts.update({(file, line) for file, line in lines})
    suspects = []
    for (file, line), failed in failed_counts.items():
        if file not in sources or not _is_statement_line(sources[file], line):
            continue
        score = ochiai(failed, passed_counts[(file, line)], len(failing))
        suspects.append(Suspect(file=file, line=line, score=score, function=enclosing_function(sources[file], line)))
    return sorted(suspects, key=lambda s: (-s.score, s.file, s.line))


def rank_functions(suspects: list[Suspect]) -> list[tuple[str, str, float]]:
    """(file, function, best line score), most suspicious first."""
    best: dict[tuple[str, str], float] = {}
    for suspect in suspects:
        if suspect.function is not None:
            key = (suspect.file, suspect.function)
            best[key] = max(best.get(key, 0.0), suspect.score)
    return sorted(((f, fn, s) for (f, fn), s in best.items()), key=lambda item: -item[2])


def enclosing_function(source: str, line: int) -> str | None:
    """The qualified name (`func`, `Class.method`) of the function that holds `line`: the innermost def at
    module or class level, so a nested helper is shown and patched with the function that defines it."""
    spans = [(start, name) for start, end, name in _outer_defs(source) if start <= line <= end]
    return max(spans)[1] if spans else None


def _outer_defs(source: str) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of each def at module or class level (cached per source: a
    large file's every suspect line asks)."""
    found = _OUTER.get(source)
    if found is None:
        defs = qualified_defs(_parse(source))
        found = _OUTER[source] = [
            (node.lineno, node.end_lineno or node.lineno, name) for name, node in defs.items()
            if not any(".".join(name.split(".")[:i]) in defs for i in range(1, name.count(".") + 1))]
        if len(_OUTER) > 256:
            _OUTER.pop(next(iter(_OUTER)))
    return found


_OUTER: dict[str, list[tuple[int, int, str]]] = {}


MAX_CONTEXT_LINES = 60  # of module constants and class attributes shown beside a function
_CONTEXT_STATEMENT_LINES = 30  # a longer table is left out rather than crowding the function out


def function_source(source: str, name: str) -> str:
    """What the model is shown of a function: its source with decorators; a method under its class's
    signature line (so the answer can be a method); the module constants it reads above it and the class
    attributes it reads (`self.X`, `cls.X`) under the class line, since a fix may be there (a pattern table,
    a URL regex); the whole source if there is no such def."""
    tree = _parse(source)
    defs = qualified_defs(tree)
    node = defs.get(name) or next((n for q, n in defs.items() if q.rsplit(".", 1)[-1] == name), None)
    if node is None:
        return source
    lines = source.splitlines()
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    shown = "\n".join(lines[start - 1 : node.end_lineno])
    owner = _owner_class(tree, node)
    budget = [MAX_CONTEXT_LINES]
    read = _names_read(node)
    for callee in tree.body:  # and those of the module's functions it calls (a helper reading a pattern table)
        if isinstance(callee, ast.FunctionDef | ast.AsyncFunctionDef) and callee.name in read and callee is not node:
            read |= _names_read(callee)
    constants = _context(lines, tree.body, read, budget)
    if owner is not None:
        header = "\n".join(lines[min([owner.lineno, *(d.lineno for d in owner.decorator_list)]) - 1 : owner.body[0].lineno - 1])
        attributes = _context(lines, owner.body, _attributes_read(node, owner.name), budget)
        shown = header.rstrip() + "\n" + (attributes + "\n\n" if attributes else "") + shown
    return (constants + "\n\n\n" if constants else "") + shown


def receiver_context(sources: dict[str, str], test: str, focus_source: str, function: str) -> str:
    """For a failing test that calls `Sub.method(...)` where the focus function is that method, inherited from a
    base class: `Sub`'s header and its class attributes the method reads (`cls._VALID_URL`), where `Sub` is a
    class of the code under repair, since the fix may be the subclass's data, not the shared method; '' otherwise."""
    owner, _, leaf = function.rpartition(".")
    method = qualified_defs(_parse(focus_source)).get(function)
    found = re.search(rf"\b([A-Za-z_]\w*)\.{re.escape(leaf)}\(", test or "")
    if method is None or not owner or found is None or found.group(1) == owner.rsplit(".", 1)[-1]:
        return ""
    receiver = found.group(1)
    read = _attributes_read(method, owner.rsplit(".", 1)[-1]) | _attributes_read(method, receiver)
    for source in sources.values():
        if f"class {receiver}" not in source:
            continue
        tree = _parse(source)
        found = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == receiver), None)
        if found is None:
            continue
        lines = source.splitlines()
        attributes = _context(lines, found.body, read, [MAX_CONTEXT_LINES])
        if attributes:
            header = "\n".join(lines[min([found.lineno, *(d.lineno for d in found.decorator_list)]) - 1 : found.body[0].lineno - 1])
            return header.rstrip() + "\n" + attributes
    return ""


def missing_name_source(source: str, name: str) -> str:
    """What the model is shown to add `name` to a module: its imports and module constants, and the
    signature lines of its functions and classes (the module's vocabulary, not all its code)."""
    tree = _parse(source)
    lines = source.splitlines()
    shown = []
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom | ast.Assign | ast.AnnAssign) \
                and statement.end_lineno - statement.lineno < _CONTEXT_STATEMENT_LINES:
            shown.append("\n".join(lines[statement.lineno - 1 : statement.end_lineno]))
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            start = min([statement.lineno, *(d.lineno for d in statement.decorator_list)])
            shown.append("\n".join(lines[start - 1 : statement.body[0].lineno - 1]).rstrip() + "\n    ...")
    return "\n".join(shown)


def _names_read(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _attributes_read(node: ast.AST, owner: str) -> set[str]:
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id in ("self", "cls", owner)}


def _context(lines: list[str], body: list[ast.stmt], names: set[str], budget: list[int]) -> str:
    """The plain assignments of `names` in `body` (a module's or a class's), as the file has them, within the
    shared line budget."""
    shown = []
    for statement in body:
        target = statement.targets[0] if isinstance(statement, ast.Assign) and len(statement.targets) == 1 else \
            statement.target if isinstance(statement, ast.AnnAssign) and statement.value else None
        if not isinstance(target, ast.Name) or target.id not in names:
            continue
        size = statement.end_lineno - statement.lineno + 1
        if size > _CONTEXT_STATEMENT_LINES or size > budget[0]:
            continue
        budget[0] -= size
        shown.append("\n".join(lines[statement.lineno - 1 : statement.end_lineno]))
    return "\n".join(shown)


def _owner_class(tree: ast.Module, target: ast.AST) -> ast.ClassDef | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and target in node.body:
            return node
    return None


def _is_statement_line(source: str, line: int) -> bool:
    """The def line itself is reported when a function is entered; it is never where a bug is."""
    return line not in _header_lines(source)


def _header_lines(source: str) -> frozenset[int]:
    found = _HEADERS.get(source)
    if found is None:
        found = _HEADERS[source] = frozenset(
            node.lineno for node in ast.walk(_parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))
        if len(_HEADERS) > 256:
            _HEADERS.pop(next(iter(_HEADERS)))
    return found


_HEADERS: dict[str, frozenset[int]] = {}


_PARSED: dict[str, ast.Module] = {}


def _parse(source: str) -> ast.Module:
    tree = _PARSED.get(source)
    if tree is None:
        tree = _PARSED[source] = ast.parse(source)
        if len(_PARSED) > 256:
            _PARSED.pop(next(iter(_PARSED)))
    return tree
