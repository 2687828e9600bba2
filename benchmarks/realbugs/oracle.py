"""Read the upstream fix of a real-bug case from the git mirrors (no upstream code is stored here).

A case is a record of ``cases.json`` (or just its ``id``).  The fixed commit's text is read with
``git show`` from the bare mirror of the case's repository, so an oracle model can answer with the
upstream version of whatever function a prompt shows::

    from benchmarks.realbugs import oracle
    case = oracle.load_case("youtube-dl-26")
    print(oracle.fixed_function_source(case, "youtube_dl/utils.py", "js_to_json"))

Importing this module has no side effects.  The mirror folder is ``$REALBUGS_MIRROR_DIR`` or
``/work/.mirror`` (``<owner>+<name>/repo`` inside it), or the ``mirror_dir`` argument.

The CI cases (``ci_cases.py``) need no mirror: their record (``<out>/<id>/case.json``, written by
``ci_cases.py``) has a ``ci`` entry naming the built case folder and the vendored fix patch
(``ci_patches/<id>.fix.patch``), so the buggy text comes from the built tree and the fixed text is that
with the patch applied.  A record without that entry finds it through ``$REALBUGS_CI_DIR`` (the
``--out`` folder of ``ci_cases.py``) when ``<dir>/<id>/case.json`` is there; an explicit ``mirror_dir``
argument always reads the mirrors.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

CASES_FILE = Path(__file__).resolve().parent / "cases.json"
CI_PATCH_DIR = Path(__file__).resolve().parent / "ci_patches"
DEFAULT_MIRROR_DIR = "/work/.mirror"

__all__ = [
    "FilePatch",
    "OracleError",
    "apply_file_patch",
    "buggy_file",
    "fixed_file",
    "fixed_function_source",
    "function_source",
    "load_case",
    "load_cases",
    "mirror_gitdir",
    "parse_patch",
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
    """The fixed commit's full text of ``path``.  For a CI case: the built tree's text with the vendored fix
    patch applied."""
    case = _case(case)
    ci = None if mirror_dir is not None else _ci_source(case)
    if ci is not None:
        tree, patch = ci
        text = _tree_text(tree, path, missing_ok=True)
        for fp in parse_patch(_read(patch)):
            if path in (fp.old, fp.new):
                if fp.new is None:
                    raise OracleError(f"the fix deletes {path}")
                return apply_file_patch(text or "", fp)
        if text is None:
            raise OracleError(f"{path} not in {tree}")
        return text
    return _show(str(mirror_gitdir(case, mirror_dir)), case["fixed_commit"], path)


def buggy_file(case: dict | str, path: str, mirror_dir: str | os.PathLike | None = None) -> str:
    """The buggy commit's full text of ``path`` (without the fixed test files BugsInPy copies in).  For a
    CI case: the built tree's text (where test files are already the fixed commit's)."""
    case = _case(case)
    ci = None if mirror_dir is not None else _ci_source(case)
    if ci is not None:
        return _tree_text(ci[0], path)
    return _show(str(mirror_gitdir(case, mirror_dir)), case["buggy_commit"], path)


# ------------------------------------------------------------------------------------------- CI cases


def _ci_source(case: dict) -> tuple[Path, Path] | None:
    """(buggy tree, fix patch) of a CI case built by ci_cases.py; None for a mirror case."""
    ci = case.get("ci")
    if ci is None and os.environ.get("REALBUGS_CI_DIR"):
        record = Path(os.environ["REALBUGS_CI_DIR"]) / case["id"] / "case.json"
        if record.is_file():
            ci = json.loads(record.read_text(encoding="utf-8")).get("ci")
    if not ci:
        return None
    patch = Path(ci["fix_patch"])
    return Path(ci["case_dir"]) / "buggy", patch if patch.is_absolute() else CI_PATCH_DIR / patch


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        raise OracleError(f"cannot read {path}: {exc}") from exc


def _tree_text(tree: Path, path: str, missing_ok: bool = False) -> str | None:
    target = (tree / path).resolve()
    if not target.is_relative_to(tree.resolve()):
        raise OracleError(f"{path} is outside {tree}")
    if not target.is_file():
        if missing_ok:
            return None
        raise OracleError(f"{path} not in {tree}")
    return _read(target)


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class FilePatch:
    """One file of a git-style unified diff: ``old``/``new`` paths (None: created / deleted) and its hunks
    as ``(old_start, old_lines, new_lines)``, lines with their ``\\n`` (none after a "No newline" mark)."""

    old: str | None
    new: str | None
    hunks: list[tuple[int, list[str], list[str]]] = field(default_factory=list)


def _strip_ab(path: str) -> str | None:
    if path == "/dev/null":
        return None
    return path[2:] if path[:2] in ("a/", "b/") else path


def parse_patch(text: str) -> list[FilePatch]:
    """Parse a ``git diff`` (or ``diff -u``) text; new and deleted files included, binary patches not."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out: list[FilePatch] = []
    fp: FilePatch | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("diff --git "):
            m = re.match(r"diff --git a/(.*) b/(.*)$", line)
            if not m:
                raise OracleError(f"cannot parse {line!r}")
            fp = FilePatch(m[1], m[2])
            out.append(fp)
        elif line.startswith("new file mode") and fp is not None:
            fp.old = None
        elif line.startswith("deleted file mode") and fp is not None:
            fp.new = None
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = _strip_ab(line[4:].split("\t")[0]), _strip_ab(lines[i + 1][4:].split("\t")[0])
            if fp is None or fp.hunks:  # plain ``diff -u`` without git headers
                fp = FilePatch(old, new)
                out.append(fp)
            else:
                fp.old, fp.new = old, new
            i += 1
        elif line.startswith("GIT binary patch"):
            raise OracleError("binary patches are not supported")
        elif (m := _HUNK.match(line)) is not None:
            if fp is None:
                raise OracleError(f"hunk without a file header: {line!r}")
            n_old = int(m[2]) if m[2] is not None else 1
            n_new = int(m[4]) if m[4] is not None else 1
            old_lines: list[str] = []
            new_lines: list[str] = []
            last: tuple[list[str], ...] = ()
            i += 1
            while i < len(lines) and (len(old_lines) < n_old or len(new_lines) < n_new
                                      or lines[i].startswith("\\")):
                body = lines[i]
                tag, content = (body[:1] or " "), body[1:] + "\n"
                if tag == "\\":  # "\ No newline at end of file": the line before has no newline
                    for seq in last:
                        seq[-1] = seq[-1][:-1]
                elif tag == " ":
                    old_lines.append(content)
                    new_lines.append(content)
                    last = (old_lines, new_lines)
                elif tag == "-":
                    old_lines.append(content)
                    last = (old_lines,)
                elif tag == "+":
                    new_lines.append(content)
                    last = (new_lines,)
                else:
                    raise OracleError(f"bad hunk line {body!r}")
                i += 1
            if len(old_lines) != n_old or len(new_lines) != n_new:
                raise OracleError(f"truncated hunk {line!r}")
            fp.hunks.append((int(m[1]), old_lines, new_lines))
            continue
        i += 1
    return out


def apply_file_patch(text: str, fp: FilePatch) -> str:
    """``text`` with the hunks of ``fp`` applied.  Each hunk's old lines must match exactly, at the line the
    hunk names or, failing that, at the nearest place after the previous hunk; otherwise OracleError."""
    src = re.findall(r"[^\n]*\n|[^\n]+$", text)
    out: list[str] = []
    pos = 0
    offset = 0
    for start, old, new in fp.hunks:
        want = max((start - 1 if old else start) + offset, pos)
        n = len(old)
        cands = sorted(range(pos, len(src) - n + 1), key=lambda k: abs(k - want))
        at = next((k for k in cands if src[k:k + n] == old), None)
        if at is None:
            raise OracleError(f"hunk at line {start} of {fp.new or fp.old} does not apply")
        out += src[pos:at] + new
        offset = at - (start - 1 if old else start)
        pos = at + n
    return "".join(out + src[pos:])


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
