"""Seed functions from a code corpus: self-contained top-level functions of a directory of .py files.

A function qualifies when everything it reads is a parameter, a local, a builtin or a pure stdlib
module the file imports (math, re, ...): it can then run on its own, given only those imports. It
must not be a generator or coroutine, and must not use `global`/`nonlocal`. Without a teacher only
functions with a docstring are kept; the docstring (minus its doctest lines) becomes the description
and its doctest calls become inputs. Files are read in sorted order so runs reproduce.
"""

from __future__ import annotations

import ast
import builtins
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from training.data.models import Origin, Program

PURE_MODULES = frozenset({
    "math", "re", "string", "itertools", "collections", "functools", "operator", "heapq", "bisect",
    "unicodedata", "textwrap", "fractions", "statistics", "keyword", "difflib", "fnmatch", "binascii",
})
_BUILTINS = frozenset(dir(builtins)) - {"open", "input", "exec", "eval", "compile", "__import__", "breakpoint",
                                        "exit", "quit", "help", "globals", "locals", "vars", "memoryview"}
_SKIP_DIRS = {"test", "tests", "idlelib", "tkinter", "turtledemo", "site-packages", "lib2to3", "ensurepip",
              "__pycache__", "venv", "pydoc_data", "multiprocessing", "asyncio", "concurrent"}
_MAX_LINES = 40


def corpus_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"corpus {root} is neither a directory nor a .py file")
    return sorted(p for p in root.rglob("*.py") if not _SKIP_DIRS.intersection(p.relative_to(root).parts[:-1]))


def seed_functions(root: Path, *, require_docstring: bool = True) -> Iterator[Program]:
    """Every qualifying function of the corpus, in a stable order."""
    base = root if root.is_dir() else root.parent
    for path in corpus_files(root):
        try:
            source = path.read_text(encoding="utf-8")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # old escapes in a corpus file are not our concern
                tree = ast.parse(source)
        except (UnicodeDecodeError, SyntaxError, ValueError):
            continue
        modules = _pure_imports(tree)
        for node in tree.body:
            program = _seed(node, source, modules, f"{path.relative_to(base)}::", require_docstring)
            if program is not None:
                yield program


def _pure_imports(tree: ast.Module) -> dict[str, str]:
    """Bound name -> import line, for the file's top-level `import m` / `import m as x` of pure modules."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in PURE_MODULES:
                    bound = alias.asname or alias.name
                    found[bound] = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
    return found


def _seed(node: ast.stmt, source: str, modules: dict[str, str], where: str, require_docstring: bool) -> Program | None:
    if not isinstance(node, ast.FunctionDef) or node.decorator_list or not node.args.args:
        return None
    if node.args.vararg or node.args.kwarg or node.args.kwonlyargs or node.args.posonlyargs:
        return None
    if (node.end_lineno or node.lineno) - node.lineno > _MAX_LINES:
        return None
    docstring = ast.get_docstring(node) or ""
    if require_docstring and not docstring.strip():
        return None
    reads = _free_names(node)
    if reads is None or not reads <= (_BUILTINS | set(modules)):
        return None
    code = _without_docstring(node, source)
    if code is None:
        return None
    imports = [modules[name] for name in sorted(reads & set(modules))]
    full = "\n".join(imports) + ("\n\n" if imports else "") + code + "\n"
    return Program(code=full, entry=node.name, description=_description(node, docstring),
                   origin=Origin(kind="corpus", ref=where + node.name), inputs=doctest_inputs(docstring, node.name))


def _free_names(function: ast.FunctionDef) -> set[str] | None:
    """Names the function reads that it does not bind itself; None if it cannot stand alone."""
    bound = {a.arg for a in function.args.args}
    reads: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Global | ast.Nonlocal | ast.Yield | ast.YieldFrom | ast.Await | ast.ClassDef):
            return None
        if isinstance(node, ast.Name):
            (reads if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            if node is not function and not isinstance(node, ast.Lambda):
                bound.add(node.name)
            args = node.args
            bound |= {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
            bound |= {a.arg for a in (args.vararg, args.kwarg) if a}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            return None  # imports inside the function: not worth reasoning about
    return reads - bound - {function.name}


def _without_docstring(node: ast.FunctionDef, source: str) -> str | None:
    lines = source.splitlines()[node.lineno - 1 : node.end_lineno]
    body = node.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
        if len(body) == 1:
            return None
        first, last = body[0].lineno - node.lineno, (body[0].end_lineno or body[0].lineno) - node.lineno
        if any(line.strip() for line in lines[first][: body[0].col_offset]) or lines[first].rstrip().endswith(":"):
            return None  # a docstring sharing its line with other code: leave such functions out
        lines = lines[:first] + lines[last + 1 :]
    code = "\n".join(lines)
    try:
        ast.parse(code)
    except SyntaxError:
        return None
    return code


_DOCTEST = re.compile(r"^\s*>>>\s?(.*)$", re.MULTILINE)


def _description(node: ast.FunctionDef, docstring: str) -> str:
    text = "\n".join(line for line in docstring.splitlines() if not line.lstrip().startswith((">>>", "...")))
    text = re.split(r"\n\s*\n(?=\s*\S+\s*\n\s*-{3,})", text)[0].strip()  # numpydoc sections add little
    signature = ", ".join(a.arg for a in node.args.args)
    return f"Write a Python function `{node.name}({signature})`: {text}"


def doctest_inputs(docstring: str, name: str) -> list[str]:
    """Argument lists of the doctest calls `name(...)` whose arguments are all literals."""
    found = []
    for match in _DOCTEST.finditer(docstring):
        try:
            expression = ast.parse(match.group(1).strip(), mode="eval").body
        except SyntaxError:
            continue
        if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name) and expression.func.id == name:
            if expression.keywords or not all(_is_literal(arg) for arg in expression.args):
                continue
            found.append(", ".join(ast.unparse(arg) for arg in expression.args))
    return found


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True
