"""A model-free patch source: small semantic mutations at a suspicious line.

Each mutant changes one expression (operator swap, comparison or boundary change, +/-1 constant,
negated condition, swapped arguments, another variable returned, ...) and is spliced into the
original text at that expression's position, so the rest of the file, comments included, stays
byte-for-byte the same and the diff shows only the fix.
"""

from __future__ import annotations

import ast
import copy
import functools
from collections.abc import Iterator

from pydantic import BaseModel

_ARITHMETIC = [ast.Add, ast.Sub]
_MULTIPLICATIVE = [ast.Mult, ast.Div, ast.FloorDiv, ast.Mod]
_COMPARE_ALTERNATIVES: dict[type[ast.cmpop], list[type[ast.cmpop]]] = {
    ast.Lt: [ast.LtE, ast.Gt, ast.GtE], ast.LtE: [ast.Lt, ast.GtE, ast.Gt],
    ast.Gt: [ast.GtE, ast.Lt, ast.LtE], ast.GtE: [ast.Gt, ast.LtE, ast.Lt],
    ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.In: [ast.NotIn], ast.NotIn: [ast.In],
    ast.Is: [ast.IsNot], ast.IsNot: [ast.Is],
}
_OPERATOR_NODES = (ast.BoolOp, ast.BinOp, ast.Compare, ast.UnaryOp, ast.IfExp, ast.Lambda, ast.NamedExpr)


class Mutant(BaseModel):
    file: str
    line: int
    description: str
    source: str


def mutants_at(file: str, source: str, line: int) -> list[Mutant]:
    """Every distinct mutant of the expressions that start on `line`, in a stable order."""
    by_line, parents, scope_names = _analysis(source)
    seen = {source}
    mutants = []
    for node in by_line.get(line, ()):
        for description, replacement in _replacements(node, scope_names.get(_function_of(node, parents), [])):
            text = _splice(source, node, _render(replacement, node, parents.get(node)))
            if text in seen or not _parses(text):
                continue
            seen.add(text)
            mutants.append(Mutant(file=file, line=line, description=f"line {line}: {description}", source=text))
    return mutants


@functools.lru_cache(maxsize=4)
def _analysis(source: str) -> tuple[dict[int, list[ast.AST]], dict[ast.AST, ast.AST], dict[ast.AST | None, list[str]]]:
    """A file's expressions by start line (in walk order), their parents and each function's names: one parse per
    version of a file, not one per suspect line (a 3,000-line module, 50 suspect lines). Read-only: mutants copy."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    by_line: dict[int, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if hasattr(node, "end_col_offset") and getattr(node, "lineno", None) is not None:
            by_line.setdefault(node.lineno, []).append(node)
    return by_line, parents, _names_by_function(tree)


def _replacements(node: ast.AST, names: list[str]) -> Iterator[tuple[str, ast.AST]]:
    if isinstance(node, ast.BinOp):
        yield from _swap_binop(node)
    elif isinstance(node, ast.AugAssign):
        for op in _group_of(node.op):
            yield f"{_sym(node.op)}= -> {_sym(op)}=", _with(node, op=op())
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        for op in _COMPARE_ALTERNATIVES.get(type(node.ops[0]), []):
            yield f"{_sym(node.ops[0])} -> {_sym(op)}", _with(node, ops=[op()])
    elif isinstance(node, ast.BoolOp):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield f"{_sym(node.op)} -> {_sym(other)}", _with(node, op=other)
    elif isinstance(node, ast.If | ast.While | ast.IfExp | ast.Assert):
        yield "negated condition", _negate(node.test)
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        yield f"{node.value} -> {node.value + 1}", ast.Constant(node.value + 1)
        yield f"{node.value} -> {node.value - 1}", ast.Constant(node.value - 1)
    elif isinstance(node, ast.Call):
        yield from _call_mutants(node)
    elif isinstance(node, ast.Return) and isinstance(node.value, ast.Name):
        for name in names:
            if name != node.value.id:
                yield f"return {node.value.id} -> return {name}", ast.Return(ast.Name(name))


def _swap_binop(node: ast.BinOp) -> Iterator[tuple[str, ast.AST]]:
    for op in _group_of(node.op):
        yield f"{_sym(node.op)} -> {_sym(op)}", _with(node, op=op())
    if isinstance(node.op, ast.Sub | ast.Div | ast.FloorDiv | ast.Mod):  # not commutative: a - b -> b - a
        yield "swapped operands", _with(node, left=node.right, right=node.left)


def _call_mutants(node: ast.Call) -> Iterator[tuple[str, ast.AST]]:
    args = node.args
    for i in range(len(args) - 1):
        if ast.dump(args[i]) != ast.dump(args[i + 1]):
            swapped = [*args[:i], args[i + 1], args[i], *args[i + 2:]]
            yield f"swapped arguments {i + 1} and {i + 2}", _with(node, args=swapped)
    if isinstance(node.func, ast.Name) and node.func.id == "range":
        for i, arg in enumerate(args):
            for op, sign in ((ast.Add(), "+"), (ast.Sub(), "-")):
                bumped = [*args[:i], ast.BinOp(arg, op, ast.Constant(1)), *args[i + 1:]]
                yield f"range bound {ast.unparse(arg)} -> {ast.unparse(arg)} {sign} 1", _with(node, args=bumped)


def _negate(test: ast.expr) -> ast.expr:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return test.operand
    return ast.UnaryOp(ast.Not(), test)


def _render(replacement: ast.AST, original: ast.AST, parent: ast.AST | None) -> str:
    """Only the replaced part of a statement is rendered; parentheses keep precedence where it may change."""
    if isinstance(original, ast.If | ast.While | ast.Assert | ast.IfExp):
        text = ast.unparse(replacement)
        return f"({text})" if isinstance(original, ast.IfExp) and isinstance(replacement, _OPERATOR_NODES) else text
    text = ast.unparse(replacement)
    same_shape = type(replacement) is type(original) and not isinstance(original, ast.BoolOp)
    if isinstance(parent, ast.expr) and isinstance(replacement, _OPERATOR_NODES) and not same_shape:
        return f"({text})"
    return text


def _splice(source: str, node: ast.AST, text: str) -> str:
    """Replaces the node's span; for a condition-carrying statement only its test is replaced."""
    target = node.test if isinstance(node, ast.If | ast.While | ast.Assert | ast.IfExp) else node
    lines = source.splitlines(keepends=True)
    start = _offset(lines, target.lineno, target.col_offset)  # type: ignore[attr-defined]
    end = _offset(lines, target.end_lineno, target.end_col_offset)  # type: ignore[attr-defined]
    return source[:start] + text + source[end:]


def _offset(lines: list[str], lineno: int, col_bytes: int) -> int:
    """AST columns count UTF-8 bytes; string offsets count characters."""
    before = sum(len(line) for line in lines[: lineno - 1])
    return before + len(lines[lineno - 1].encode("utf-8")[:col_bytes].decode("utf-8", errors="ignore"))


def _with(node: ast.AST, **fields: object) -> ast.AST:
    clone = copy.copy(node)
    for name, value in fields.items():
        setattr(clone, name, value)
    return clone


def _group_of(op: ast.operator) -> list[type[ast.operator]]:
    for group in (_ARITHMETIC, _MULTIPLICATIVE):
        if type(op) in group:
            return [other for other in group if other is not type(op)]
    return []


def _sym(op: ast.AST) -> str:
    probe = {
        ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
        ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
        ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.And: "and", ast.Or: "or",
    }
    kind = op if isinstance(op, type) else type(op)
    return probe.get(kind, kind.__name__)


def _function_of(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    current = parents.get(node)
    while current is not None and not isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef):
        current = parents.get(current)
    return current


def _names_by_function(tree: ast.Module) -> dict[ast.AST | None, list[str]]:
    """Parameters and assigned local names of each function, in first-appearance order."""
    scopes: dict[ast.AST | None, list[str]] = {}
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            names = [a.arg for a in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)]
            for node in ast.walk(function):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in names:
                    names.append(node.id)
            scopes[function] = names
    return scopes


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True
