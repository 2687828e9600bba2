"""A request becomes a Task: the same loaders as `semcoder repair`, behind the server's rules.

Project paths must resolve (symlinks followed) inside an allowed root; archives are unpacked member by member
into a private temporary directory, refusing links, devices, absolute paths and `..`, within a size cap.
A project path's Task snapshots its source and config, and its test runs see the rest of the project read-only
in the sandbox (agent.tasks.project_tree); an archive's Task holds everything (its directory goes away).
"""

from __future__ import annotations

import ast
import base64
import binascii
import io
import tarfile
import tempfile
from pathlib import Path

from agent.api.schemas import RepairRequest
from agent.tasks import Task, TaskError, function_task, project_task

SOLUTION, TESTS = "solution.py", "test_solution.py"


class Forbidden(Exception):
    """The request names something this server may not touch (403)."""


def task_from(request: RepairRequest, allowed_roots: list[Path], max_archive_bytes: int) -> tuple[Task, str]:
    """The task and a short label of its target; TaskError (422) or Forbidden (403) otherwise."""
    if request.code is not None:
        return _function_task(request), SOLUTION
    if request.project_path is not None:
        root = _allowed(Path(request.project_path), allowed_roots)
        return _with_problem(project_task(root), request.problem), str(root)
    with tempfile.TemporaryDirectory(prefix="semcoder-upload-") as scratch:
        _unpack(request.project_archive or "", Path(scratch), max_archive_bytes)
        task = project_task(Path(scratch), linked=False)
    return _with_problem(task.model_copy(update={"root": None}), request.problem), "archive"


def _function_task(request: RepairRequest) -> Task:
    with tempfile.TemporaryDirectory(prefix="semcoder-function-") as scratch:
        (Path(scratch) / SOLUTION).write_text(request.code or "", encoding="utf-8")
        (Path(scratch) / TESTS).write_text(request.tests or "", encoding="utf-8")
        task = function_task(Path(scratch) / SOLUTION, Path(scratch) / TESTS, problem=request.problem)
    if request.entry_point is not None:
        defined = {node.name for node in ast.parse(task.files[SOLUTION]).body
                   if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
        if request.entry_point not in defined:
            raise TaskError(f"entry_point {request.entry_point!r} is not a function defined in code")
        task = task.model_copy(update={"entry_point": request.entry_point})
    return task.model_copy(update={"root": None})  # nothing on disk to apply a diff to


def _with_problem(task: Task, problem: str) -> Task:
    return task.model_copy(update={"problem": problem}) if problem else task


def _allowed(path: Path, roots: list[Path]) -> Path:
    if not roots:
        raise Forbidden("this server accepts no project paths (no allowed roots configured); upload an archive")
    if not path.is_absolute():
        raise TaskError(f"project_path must be absolute, got {str(path)!r}")
    resolved = path.resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise Forbidden(f"{path} is outside the allowed roots ({', '.join(map(str, roots))})")
    return resolved


def _unpack(encoded: str, into: Path, max_bytes: int) -> None:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TaskError(f"project_archive is not valid base64: {exc}") from exc
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as archive:
            members = archive.getmembers()
            _check_members(members, max_bytes)
            archive.extractall(into, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise TaskError(f"project_archive is not a readable .tar.gz: {exc}") from exc


def _check_members(members: list[tarfile.TarInfo], max_bytes: int) -> None:
    total = 0
    for member in members:
        parts = Path(member.name).parts
        if member.name.startswith("/") or ".." in parts:
            raise TaskError(f"project_archive member {member.name!r} points outside the project")
        if not (member.isfile() or member.isdir()):
            raise TaskError(f"project_archive member {member.name!r} is not a regular file or directory")
        total += member.size
        if total > max_bytes:
            raise TaskError(f"project_archive unpacks to more than {max_bytes} bytes")
