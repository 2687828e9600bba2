"""Putting refined code back: a whole file, or just the functions the model rewrote."""

from __future__ import annotations

import ast


class SpliceError(ValueError):
    """The refined code does not fit the file (does not parse, or lacks the function under repair)."""


def apply_refined(file_source: str, refined: str, function: str | None) -> str:
    """With `function`, only the defs of that name (and any other def the file already has that the answer
    rewrote) are replaced, so the rest of a project file stays as it was; without it, the whole file."""
    try:
        answer = ast.parse(refined)
    except SyntaxError as exc:
        raise SpliceError(f"the refined code does not parse: line {exc.lineno}: {exc.msg}") from exc
    if function is None:
        return refined if refined.endswith("\n") else refined + "\n"
    new_defs = {n.name: ast.get_source_segment(refined, n, padded=False) for n in answer.body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    if function not in new_defs:
        raise SpliceError(f"the refined code does not define {function}()")
    return _replace_defs(file_source, new_defs)


def _replace_defs(source: str, new_defs: dict[str, str | None]) -> str:
    lines = source.splitlines(keepends=True)
    targets = [n for n in ast.walk(ast.parse(source))
               if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and new_defs.get(n.name)]
    for node in sorted(targets, key=lambda n: -n.lineno):
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        indent = lines[node.lineno - 1][: len(lines[node.lineno - 1]) - len(lines[node.lineno - 1].lstrip())]
        body = "".join(indent + line if line.strip() else line
                       for line in (new_defs[node.name] or "").splitlines(keepends=True))
        lines[start:node.end_lineno] = [body if body.endswith("\n") else body + "\n"]
    return "".join(lines)
