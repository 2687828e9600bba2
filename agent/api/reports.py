"""Eval reports: the `semcoder eval --model URL --out NAME` folders under `semcoder serve --reports DIR`, and uploads.

The files are read as data through agent/eval_report.py (the schema evals/ writes with). Every name is checked
(one plain path component), every path resolved and confined under DIR (a symlink out of it is refused), and
every file read is capped at `max_report_bytes`. An upload (`POST /v1/reports`: a report made on another machine)
is validated against the same schema and written as a new folder under DIR, never over an existing one.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field, ValidationError

from agent.api.schemas import ErrorBody
from agent.eval_report import REPORT_FILE, TASKS_FILE, RunReport, TaskOutcome

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


class ReportEntry(BaseModel):
    name: str = Field(description="The folder's name under the reports directory.")
    modified: float = Field(description="Unix time report.json was last written.")
    report: RunReport | None = Field(description="report.json (None when it cannot be read: see `error`).")
    error: str | None = None


class ReportList(BaseModel):
    configured: bool = Field(description="Whether the server has a reports directory (`semcoder serve --reports "
                             "DIR`, SEMCODER_REPORTS_DIR).")
    reports: list[ReportEntry] = Field(description="Folders holding a report.json, newest first.")


class RoundCell(BaseModel):
    round: int
    passed: int = Field(description="Samples passing in this round.")
    samples: int


class TaskRow(BaseModel):
    task_id: str
    rounds: list[RoundCell]


class ReportDetail(BaseModel):
    name: str
    report: RunReport
    has_tasks: bool = Field(description="Whether the folder has tasks.jsonl (reports of older versions do not).")
    tasks: list[TaskRow] = Field(description="Each task's passing samples per round, in the run's order.")


class ReportUpload(BaseModel):
    """A `semcoder eval --out` folder's report.json and tasks.jsonl (one TaskOutcome per line, as a list)."""

    name: str = Field(pattern=NAME.pattern, description="The new folder's name under the reports directory (letters, "
                      "digits, '.', '_' and '-'; not an existing report's).")
    report: RunReport
    tasks: list[TaskOutcome] = Field(default_factory=list, description="tasks.jsonl's lines ([] when the folder has "
                                     "none: the page then shows the chart without the task grid).")


_RESPONSES = {403: {"model": ErrorBody, "description": "The name resolves outside the reports directory."},
              404: {"model": ErrorBody, "description": "No such report (or no reports directory)."},
              413: {"model": ErrorBody, "description": "A report file is larger than max_report_bytes."}}

reports = APIRouter(tags=["reports"])


@reports.get("/reports", response_model=ReportList)
def list_reports(request: Request) -> ReportList:
    """The eval report folders under the server's reports directory, newest first."""
    root = _root(request, required=False)
    if root is None:
        return ReportList(configured=False, reports=[])
    entries = []
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        if not NAME.match(child.name):
            continue
        try:
            path = _confined(root, child.name, REPORT_FILE)
        except HTTPException:
            continue
        if not path.is_file():
            continue
        try:
            entries.append(ReportEntry(name=child.name, modified=path.stat().st_mtime,
                                       report=_report(path, _cap(request))))
        except HTTPException as exc:
            entries.append(ReportEntry(name=child.name, modified=path.stat().st_mtime, report=None,
                                       error=str(exc.detail)))
    return ReportList(configured=True, reports=sorted(entries, key=lambda e: e.modified, reverse=True))


@reports.post("/reports", response_model=ReportEntry, status_code=status.HTTP_201_CREATED, responses={
    404: {"model": ErrorBody, "description": "The server has no reports directory to keep uploads in."},
    409: {"model": ErrorBody, "description": "A report of that name exists."},
    413: {"model": ErrorBody, "description": "Larger than max_request_bytes, or a file larger than max_report_bytes."}})
def upload_report(upload: ReportUpload, request: Request) -> ReportEntry:
    """Keep a report made elsewhere (a GPU machine's `semcoder eval --out` folder) beside the local ones."""
    root = _root(request)
    _confined(root, upload.name, REPORT_FILE)
    target = root / upload.name  # not resolved: a link of that name makes the rename fail instead of following it
    report_text = upload.report.model_dump_json(indent=2) + "\n"
    tasks_text = "".join(task.model_dump_json() + "\n" for task in upload.tasks)
    if max(len(report_text), len(tasks_text)) > _cap(request):
        raise HTTPException(413, f"the report's files would be larger than {_cap(request)} bytes, which the "
                            "server would not read back (SEMCODER_MAX_REPORT_BYTES)")
    # Written whole into a hidden folder (NAME never matches a leading '.'), then renamed into place: a reader never
    # sees half a report, and the rename refuses a name that exists (no upload replaces a report).
    staging = root / f".upload-{secrets.token_hex(8)}"
    staging.mkdir(parents=True)
    try:
        (staging / REPORT_FILE).write_text(report_text)
        if upload.tasks:
            (staging / TASKS_FILE).write_text(tasks_text)
        try:
            os.rename(staging, target)
        except OSError as exc:  # ENOTEMPTY / EEXIST: the name is taken
            raise HTTPException(status.HTTP_409_CONFLICT, f"a report named {upload.name!r} exists") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ReportEntry(name=upload.name, modified=(target / REPORT_FILE).stat().st_mtime, report=upload.report)


@reports.get("/reports/{name}", response_model=ReportDetail, responses=_RESPONSES)
def get_report(name: str, request: Request) -> ReportDetail:
    """A report: pass@1 per round (report.json) and each task's passing samples per round (tasks.jsonl)."""
    root = _root(request)
    report = _report(_existing(root, name, REPORT_FILE), _cap(request))
    tasks_path = _confined(root, name, TASKS_FILE)
    rows = []
    if tasks_path.is_file():
        rows = [TaskRow(task_id=task.task_id, rounds=[
            RoundCell(round=r.round, passed=sum(s.passed for s in r.samples), samples=len(r.samples))
            for r in task.rounds]) for task in _tasks(tasks_path, _cap(request))]
    return ReportDetail(name=name, report=report, has_tasks=tasks_path.is_file(), tasks=rows)


@reports.get("/reports/{name}/task", response_model=TaskOutcome, responses=_RESPONSES)
def get_report_task(name: str, request: Request,
                    task_id: Annotated[str, Query(min_length=1, max_length=512)]) -> TaskOutcome:
    """One task of a report: each round's samples (program, verdict, the failing input shown for it next)."""
    root = _root(request)
    _existing(root, name, REPORT_FILE)
    for task in _tasks(_existing(root, name, TASKS_FILE), _cap(request)):
        if task.task_id == task_id:
            return task
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"report {name!r} has no task {task_id!r}")


def _root(request: Request, required: bool = True) -> Path | None:
    root = request.app.state.settings.reports_dir
    if root is None and required:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this server has no reports directory (semcoder serve "
                            "--reports DIR)")
    return root


def _cap(request: Request) -> int:
    return int(request.app.state.settings.max_report_bytes)


def _confined(root: Path, name: str, file: str) -> Path:
    """root/name/file, resolved; refused unless `name` is one plain component and the result stays under root."""
    if not NAME.match(name) or ".." in name:
        raise HTTPException(422, f"not a report name: {name!r} (letters, digits, "
                            "'.', '_' and '-' only)")
    folder = (root / name).resolve()
    path = (folder / file).resolve()
    if not folder.is_relative_to(root) or folder == root or not path.is_relative_to(root):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"report {name!r} is outside the reports directory")
    return path


def _existing(root: Path, name: str, file: str) -> Path:
    path = _confined(root, name, file)
    if not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no report {name!r}" if file == REPORT_FILE
                            else f"report {name!r} has no {file} (written by an older semcoder eval)")
    return path


def _read(path: Path, cap: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))  # resolved: a link swapped in now fails
    except OSError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"cannot read {path.name}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as file:
        data = file.read(cap + 1)
    if len(data) > cap:
        raise HTTPException(413, f"{path.name} is larger than {cap} bytes "
                            "(SEMCODER_MAX_REPORT_BYTES)")
    return data


def _report(path: Path, cap: int) -> RunReport:
    try:
        return RunReport.model_validate_json(_read(path, cap))
    except ValidationError as exc:
        raise HTTPException(422, f"{path.parent.name}/{path.name} is not an eval "
                            f"report: {exc.errors()[0]['msg']}") from exc


def _tasks(path: Path, cap: int) -> list[TaskOutcome]:
    stat = path.stat()
    return _parsed_tasks(str(path), stat.st_mtime_ns, stat.st_size, cap)


@functools.lru_cache(maxsize=8)
def _parsed_tasks(path: str, mtime_ns: int, size: int, cap: int) -> list[TaskOutcome]:
    """tasks.jsonl, parsed once per version of the file (the page asks for one task at a time)."""
    data = _read(Path(path), cap)
    try:
        return [TaskOutcome.model_validate_json(line) for line in data.splitlines() if line.strip()]
    except ValidationError as exc:
        raise HTTPException(422, f"{Path(path).parent.name}/{TASKS_FILE} is not "
                            f"an eval report's task list: {exc.errors()[0]['msg']}") from exc
