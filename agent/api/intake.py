"""A request becomes a run's task and config: the same loaders and the same `prepare` as `semcoder repair`, behind
the server's rules.

Project paths must resolve (symlinks followed) inside an allowed root, and so must a given `python` (up to its
last component: a venv's bin/python links to an installed interpreter elsewhere); archives are unpacked member by
member into a private temporary directory, refusing links, devices, absolute paths and `..`, within a size cap.
A project path's Task snapshots its source and config, and its test runs see the rest of the project read-only in
the sandbox (agent.tasks.project_tree); an archive's Task holds everything (its directory goes away). The
project's interpreter is detected as the command line detects it, except that the server's own $VIRTUAL_ENV is
semcoder's, not the project's.
"""

from __future__ import annotations

import base64
import binascii
import io
import tarfile
import tempfile
from pathlib import Path
from typing import NamedTuple

from agent.api.schemas import RepairRequest
from agent.api.settings import ApiSettings
from agent.environment import Environment
from agent.repair_settings import prepare
from agent.state import RunConfig
from agent.tasks import Task, TaskError, function_task, project_task

SOLUTION, TESTS = "solution.py", "test_solution.py"


class Forbidden(TaskError):
    """The request names something this server may not touch (403; any other TaskError is 422)."""


class Accepted(NamedTuple):
    task: Task
    config: RunConfig
    environment: Environment
    target: str = ""  # a short label of what is repaired: the project path, 'archive' or 'solution.py'


def accept(request: RepairRequest, settings: ApiSettings) -> Accepted:
    """The run's inputs; TaskError (422) or Forbidden (403) otherwise."""
    if request.python is not None:
        _allowed_python(request.python, settings.allowed_roots)
    task, target = _task(request, settings.allowed_roots, settings.max_archive_bytes)
    task, config, environment = prepare(request, task, activated=False)
    if config.python is not None and settings.sandbox_backend != "local":
        if environment.source == "--python":
            raise TaskError(f"--python {request.python}: a project's own Python runs on the local sandbox backend "
                            f"only; this server's is {settings.sandbox_backend!r}, which runs its image's interpreter")
        task = task.model_copy(update={"notes": [*task.notes, f"the project's environment {environment.python} "
                                                 f"(from {environment.source}) is not used: the "
                                                 f"{settings.sandbox_backend} sandbox runs its image's interpreter"]})
        config, environment = config.model_copy(update={"python": None}), Environment()
    return Accepted(task, config, environment, target)


def _task(request: RepairRequest, allowed_roots: list[Path], max_archive_bytes: int) -> tuple[Task, str]:
    if request.code is not None:
        return _function_task(request), SOLUTION
    if request.project_path is not None:
        root = _allowed(Path(request.project_path), allowed_roots)
        return project_task(root), str(root)
    with tempfile.TemporaryDirectory(prefix="semcoder-upload-") as scratch:
        _unpack(request.project_archive or "", Path(scratch), max_archive_bytes)
        task = project_task(Path(scratch), linked=False)
    return task.model_copy(update={"root": None}), "archive"


def _function_task(request: RepairRequest) -> Task:
    with tempfile.TemporaryDirectory(prefix="semcoder-function-") as scratch:
        (Path(scratch) / SOLUTION).write_text(request.code or "", encoding="utf-8")
        (Path(scratch) / TESTS).write_text(request.tests or "", encoding="utf-8")
        task = function_task(Path(scratch) / SOLUTION, Path(scratch) / TESTS)
    return task.model_copy(update={"root": None})  # nothing on disk to apply a diff to


def _allowed_python(python: str, roots: list[Path]) -> None:
    """A given interpreter or venv must lie under an allowed root: the server runs it (to ask what it is, and in
    the sandbox), so a client may only name one the server's owner put there."""
    if not roots:
        raise Forbidden("this server accepts no python paths (no allowed roots configured)")
    path = Path(python)
    if not path.is_absolute():
        raise TaskError(f"--python must be an absolute path on the server, got {python!r}")
    try:
        # A venv dir resolves whole; an interpreter file is a venv's link to an installed Python: its directory does.
        located = path.resolve() if path.name in ("", ".", "..") or path.is_dir() else path.parent.resolve() / path.name
    except (OSError, RuntimeError) as exc:
        raise TaskError(f"--python {python}: {exc}") from None
    if not any(located == root or located.is_relative_to(root) for root in roots):
        raise Forbidden(f"--python {python} is outside the allowed roots ({', '.join(map(str, roots))})")


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
