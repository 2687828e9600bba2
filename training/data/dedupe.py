"""Dedupe: programs equal up to identifier names, comments and docstrings count as one."""

from __future__ import annotations

import ast
import hashlib


class _Canonical(ast.NodeTransformer):
    """Renames every identifier to its order of first appearance; drops docstrings."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _name(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = self._name(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = self._name(node.arg)
        node.annotation = None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self._name(node.name)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(
            body[0].value.value, str
        ):
            node.body = body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node


def canonical_key(code: str) -> str:
    """Equal for programs that differ only in names, formatting, comments and docstrings."""
    try:
        tree = _Canonical().visit(ast.parse(code))
    except SyntaxError:
        return hashlib.sha1(code.encode()).hexdigest()
    return hashlib.sha1(ast.dump(tree).encode()).hexdigest()


class Deduper:
    """Remembers what it has seen; `first(key)` is True only the first time."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def first(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def __len__(self) -> int:
        return len(self._seen)
