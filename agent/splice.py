"""Putting refined code back: a whole file, or just the functions the model rewrote.

A function is named by its qualified name in the file (`parse`, `Parser.parse`, `outer.inner`). The answer may
be indented like the prompt's method, may wrap the method in its class, and may rewrite several functions of
the same file; each rewritten def replaces the def of the same qualified name, at that def's indentation, and
keeps the original's decorators and docstring where the answer left them out.
"""

from __future__ import annotations

import ast
import textwrap

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


class SpliceError(ValueError):
    """The refined code does not fit the file (does not parse, or lacks the function under repair)."""


def apply_refined(file_source: str, refined: str, function: str | None) -> str:
    """With `function` (a qualified name), only that def and any other def of the file the answer rewrote are
    replaced, so the rest of a project file stays as it was; without it, the whole file."""
    refined = textwrap.dedent(refined.expandtabs(8) if refined.startswith((" ", "\t")) else refined)
    try:
        answer = ast.parse(refined)
    except SyntaxError as exc:
        raise SpliceError(f"the refined code does not parse: line {exc.lineno}: {exc.msg}") from exc
    if function is None:
        return refined if refined.endswith("\n") else refined + "\n"
    targets = qualified_defs(ast.parse(file_source))
    if function not in targets:  # a plain name: the one def of that name, wherever it is
        named = [q for q in targets if q.rsplit(".", 1)[-1] == function]
        function = named[0] if len(named) == 1 else function
    rewritten = _answer_defs(answer, function, targets)
    if function not in rewritten:
        raise SpliceError(f"the refined code does not define {function.rsplit('.', 1)[-1]}()")
    patched = _replace(file_source, targets, {name: (node, refined) for name, node in rewritten.items()})
    return _merge_imports(patched, answer)


def _merge_imports(source: str, answer: ast.Module) -> str:
    """Top-level imports the answer brings that the file lacks (a fix that needs a new name) go after the
    file's last top-level import (or its docstring and __future__ imports)."""
    tree = ast.parse(source)
    have = {ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)}
    new = [ast.unparse(node) for node in answer.body
           if isinstance(node, ast.Import | ast.ImportFrom) and ast.unparse(node) not in have]
    if not new:
        return source
    anchors = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    if not anchors and tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant):
        anchors = [tree.body[0]]  # the module docstring
    at = anchors[-1].end_lineno if anchors else 0
    lines = source.splitlines(keepends=True)
    lines[at:at] = [line + "\n" for line in new]
    return "".join(lines)


def qualified_defs(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Every def of a module by qualified name (`Class.method`, `outer.inner`); the first of duplicates."""
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (*_DEFS, ast.ClassDef)):
                name = prefix + child.name
                if isinstance(child, _DEFS):
                    found.setdefault(name, child)
                visit(child, name + ".")
            elif not isinstance(child, ast.expr):
                visit(child, prefix)  # defs under if/try at the same level

    visit(tree, "")
    return found


def _answer_defs(answer: ast.Module, function: str, targets: dict[str, ast.AST]) -> dict[str, ast.AST]:
    """The answer's defs, each under the qualified name it replaces in the file. A def at the answer's top
    level named like the function under repair's last part is that function (a method answered without its
    class); otherwise names are matched as qualified in the answer (a class wrapper included)."""
    leaf = function.rsplit(".", 1)[-1]
    matched: dict[str, ast.AST] = {}
    for name, node in qualified_defs(answer).items():
        if name == leaf and "." not in name:
            matched[function] = node
        elif name in targets:
            matched.setdefault(name, node)
        elif "." in function and "." not in name and name in _siblings(function, targets):
            matched.setdefault(function.rsplit(".", 1)[0] + "." + name, node)  # another method of that class
    # A def inside another rewritten def goes with it (replacing both would overlap).
    return {name: node for name, node in matched.items()
            if not any(name.startswith(other + ".") for other in matched if other != name)}


def _siblings(function: str, targets: dict[str, ast.AST]) -> set[str]:
    owner = function.rsplit(".", 1)[0] + "."
    return {name[len(owner):] for name in targets if name.startswith(owner) and "." not in name[len(owner):]}


def _replace(source: str, targets: dict[str, ast.AST], new: dict[str, tuple[ast.AST, str]]) -> str:
    lines = source.splitlines(keepends=True)
    chosen = [(targets[name], node, text) for name, (node, text) in new.items() if name in targets]
    for old, node, text in sorted(chosen, key=lambda item: -item[0].lineno):
        start = min([old.lineno, *(d.lineno for d in old.decorator_list)]) - 1
        first = lines[old.lineno - 1]
        indent = first[: len(first) - len(first.lstrip())]
        body = _def_text(node, text, old, source)
        block = "".join(indent + line if line.strip() else line for line in body.splitlines(keepends=True))
        lines[start:old.end_lineno] = [block if block.endswith("\n") else block + "\n"]
    return "".join(lines)


def _def_text(node: ast.AST, answer: str, old: ast.AST, source: str) -> str:
    """The answer's def at column 0, with the original's decorators and docstring where it has none."""
    answer_lines = answer.splitlines(keepends=True)
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    text = textwrap.dedent("".join(answer_lines[start:node.end_lineno]))
    if not node.decorator_list and old.decorator_list:
        old_lines = source.splitlines(keepends=True)
        decorators = textwrap.dedent("".join(old_lines[min(d.lineno for d in old.decorator_list) - 1:old.lineno - 1]))
        text = decorators + text
    docstring = ast.get_docstring(old, clean=False)
    if docstring is not None and ast.get_docstring(node, clean=False) is None and node.body:
        old_lines = source.splitlines(keepends=True)
        doc_node = old.body[0]
        doc = textwrap.dedent("".join(old_lines[doc_node.lineno - 1:doc_node.end_lineno]))
        text_lines = text.splitlines(keepends=True)
        first_statement = ast.parse(text).body[0].body[0]  # type: ignore[attr-defined]
        at = first_statement.lineno - 1
        body_indent = _indent_of(text_lines[at])
        text_lines[at:at] = [body_indent + line if line.strip() else line for line in doc.splitlines(keepends=True)]
        text = "".join(text_lines)
    return text


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]
