"""Read the upstream fix of a real-bug case from the git mirrors (no upstream code is stored here).

A case is a record of ``cases.json`` (or just its ``id``).  The fixed commit's text is read with
``git show`` from the bare mirror of the case's repository, so an oracle model can answer with the
upstream version of whatever function a prompt shows::

    from benchmarks.realbugs import oracle
    case = oracle.load_case("youtube-dl-26")
    print(oracle.fixed_function_source(case, "youtube_dl/utils.py", "js_to_json"))

Importing this module has no side effects.  The mirror folder is ``$REALBUGS_MIRROR_DIR`` or
``/work/.mirror`` (``<owner>+<name>/repo`` inside it), or the ``mirror_dir`` argument.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from functools import lru_cache
from pathlib import Path

CASES_FILE = Path(__file__).resolve().parent / "cases.json"
DEFAULT_MIRROR_DIR = "/work/.mirror"

__all__ = [
    "OracleError",
    "buggy_file",
    "fixed_file",
    "fixed_function_source",
    "function_source",
    "load_case",
    "load_cases",
    "mirror_gitdir",
]


class OracleError(LookupError):
    """The case, file, commit or function cannot be found."""


def load_cases(path: str | os.PathLike | None = None) -> list[dict]:
    return json.loads(Path(path or CASES_FILE).read_text(encoding="utf-8"))


def load_case(case_id: str, path: str | os.PathLike | None = None) -> dict:
    for case in load_cases(path):
        if case["id"] == case_id:
            return case
    raise OracleError(f"no case {case_id!r}")


def _case(case: dict | str) -> dict:
    return load_case(case) if isinstance(case, str) else case


def mirror_gitdir(case: dict | str, mirror_dir: str | os.PathLike | None = None) -> Path:
    case = _case(case)
    root = Path(mirror_dir or os.environ.get("REALBUGS_MIRROR_DIR") or DEFAULT_MIRROR_DIR)
    owner, name = case["repo_url"].rstrip("/").split("/")[-2:]
    name = name.removesuffix(".git")
    for cand in (root / f"{owner}+{name}" / "repo", root / f"{owner}+{name}", root / f"{name}.git",
                 root / name):
        if (cand / "HEAD").exists() and (cand / "objects").exists():
            return cand
    raise OracleError(f"no git mirror of {case['repo_url']} under {root}")


@lru_cache(maxsize=256)
def _show(gitdir: str, commit: str, path: str) -> str:
    proc = subprocess.run(["git", "--git-dir", gitdir, "show", f"{commit}:{path}"], capture_output=True)
    if proc.returncode != 0:
        raise OracleError(f"{path} not at {commit[:12]}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout.decode("utf-8", errors="replace")


def fixed_file(case: dict | str, path: str, mirror_dir: str | os.PathLike | None = None) -> str:
    """The fixed commit's full text of ``path``."""
    case = _case(case)
    return _show(str(mirror_gitdir(case, mirror_dir)), case["fixed_commit"], path)


def buggy_file(case: dict | str, path: str, mirror_dir: str | os.PathLike | None = None) -> str:
    """The buggy commit's full text of ``path`` (without the fixed test files BugsInPy copies in)."""
    case = _case(case)
    return _show(str(mirror_gitdir(case, mirror_dir)), case["buggy_commit"], path)


def function_source(source: str, qualname: str) -> str:
    """Text of the def or class ``qualname`` (``Class.method``, ``func``) in ``source``, decorators
    included, with its original indentation.  ``<module>`` returns the whole source."""
    if qualname == "<module>":
        return source
    tree = ast.parse(source)
    parts = qualname.split(".")

    def find(node: ast.AST, names: list[str]):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if child.name == names[0]:
                    if len(names) == 1:
                        return child
                    hit = find(child, names[1:])
                    if hit is not None:
                        return hit
            else:  # defs under if/try blocks keep the enclosing prefix
                hit = find(child, names)
                if hit is not None:
                    return hit
        return None

    node = find(tree, parts)
    if node is None:
        raise OracleError(f"no {qualname!r} in the source")
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = source.splitlines(keepends=True)
    return "".join(lines[start - 1:node.end_lineno])


def fixed_function_source(case: dict | str, file: str, qualname: str,
                          mirror_dir: str | os.PathLike | None = None) -> str:
    """The fixed commit's version of function ``qualname`` in ``file``."""
    return function_source(fixed_file(case, file, mirror_dir), qualname)
