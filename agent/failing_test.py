"""A failing pytest test reduced to what SemCoder's prompt shows: `retv = <call>` and `assert retv == <expected>`."""

from __future__ import annotations

import ast
from pathlib import Path

from pydantic import BaseModel

from agent.tasks import TestOutcome


class FailedTest(BaseModel):
    test_id: str
    source: str = ""
    call: str | None = None
    expected: str | None = None
    message: str = ""

    def as_assertion(self) -> str:
        """The paper's failed-test block, or the test's own source where no single call could be derived."""
        if self.call is not None and self.expected is not None:
            return f"retv = {self.call}\nassert retv == {self.expected}"
        return self.source or self.test_id


def describe(outcome: TestOutcome, files: dict[str, str]) -> FailedTest:
    test_file, _, rest = outcome.id.partition("::")
    name = rest.split("::")[-1].split("[")[0]
    source = files.get(test_file, "")
    function = _find_function(source, name) if source else None
    if function is None:
        return FailedTest(test_id=outcome.id, message=outcome.message)
    call, expected = _call_and_expected(function, outcome.test_line)
    if call is not None and _uses_parameters(call, function):
        call = expected = None  # a parametrized call is not concrete; show the test instead
    if call is not None:
        # `restock_list(STOCK, 5)` with the test module's `STOCK = {...}`: the code under repair has no STOCK, so
        # the call is traced (and shown) with the literal in its place.
        literals = {**_literals(ast.parse(source).body), **_literals(function.body)}
        call, expected = _inlined(call, literals, keep_callee=True), _inlined(expected, literals)
    return FailedTest(test_id=outcome.id, source=ast.get_source_segment(source, function) or "",
                      call=call, expected=expected, message=outcome.message)


def call_for_module(call: str, module_file: str) -> str:
    """`mathx.clamp(5, 0, 10)` -> `clamp(5, 0, 10)` when tracing mathx.py's own source."""
    prefix = Path(module_file).with_suffix("").as_posix().replace("/", ".") + "."
    return call[len(prefix):] if call.startswith(prefix) else call


def called_function(call: str) -> str | None:
    node = ast.parse(call, mode="eval").body
    if isinstance(node, ast.Call):
        func = node.func
        return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    return None


def _find_function(source: str, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return node
    return None


def _call_and_expected(function: ast.AST, failed_line: int | None) -> tuple[str | None, str | None]:
    asserts = [n for n in ast.walk(function) if isinstance(n, ast.Assert)]
    hit = [a for a in asserts if failed_line is not None and a.lineno <= failed_line <= (a.end_lineno or a.lineno)]
    for node in hit or asserts[:1]:
        call, expected = _from_assert(node.test)
        if call is not None and call.isidentifier():
            call = _resolve_name(function, call)
        return (call, expected) if call is not None else (None, None)
    return None, None


def _from_assert(test: ast.expr) -> tuple[str | None, str | None]:
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq | ast.Is):
        left, right = test.left, test.comparators[0]
        if not isinstance(left, ast.Call | ast.Name) and isinstance(right, ast.Call | ast.Name):
            left, right = right, left
        return ast.unparse(left), ast.unparse(right)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) and isinstance(test.operand, ast.Call):
        return ast.unparse(test.operand), "False"
    if isinstance(test, ast.Call):
        return ast.unparse(test), "True"
    return None, None


def _resolve_name(function: ast.AST, expression: str) -> str | None:
    """`result = f(x); assert result == 3` -> `f(x)`."""
    if not expression.isidentifier():
        return None
    value = None
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == expression for t in node.targets):
            value = node.value
    return ast.unparse(value) if isinstance(value, ast.Call) else None


MAX_INLINED = 2000  # characters of one literal put in place of its name


def _literals(statements: list[ast.stmt]) -> dict[str, ast.expr]:
    """Names bound once, directly in `statements`, to a literal (`STOCK = {"apples": 3}`)."""
    bound: dict[str, list[ast.expr]] = {}
    for node in statements:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, []).append(node.value)
    literals = {}
    for name, values in bound.items():
        try:
            ast.literal_eval(values[0])
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if len(values) == 1 and len(ast.unparse(values[0])) <= MAX_INLINED:
            literals[name] = values[0]
    return literals


def _inlined(expression: str | None, literals: dict[str, ast.expr], keep_callee: bool = False) -> str | None:
    if expression is None or not literals:
        return expression
    tree = ast.parse(expression, mode="eval")
    callee = tree.body.func if keep_callee and isinstance(tree.body, ast.Call) else None

    class Inline(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node is not callee and isinstance(node.ctx, ast.Load) and node.id in literals:
                return literals[node.id]
            return node

    return ast.unparse(Inline().visit(tree))


def _uses_parameters(call: str, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    parameters = {a.arg for a in function.args.args}
    return any(isinstance(n, ast.Name) and n.id in parameters for n in ast.walk(ast.parse(call, mode="eval")))
