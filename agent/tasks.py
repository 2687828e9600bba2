"""What to repair and how to test it: a workspace of files, the editable ones, and pytest in the sandbox.

Both task kinds reduce to the same thing. A function-level task is a two-file workspace (the target
and a pytest file importing it by its stem); a project-level task is a snapshot of a directory. The
original files are never touched: every test run happens in a fresh sandbox working dir.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.resources import files as package_files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from agent.verdict import Confirmation, Confirmer
from sandbox import Job, JobResult, JobRunner
from sandbox.job import outer_limits

_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "env", "node_modules", ".tox", ".nox",
              ".mypy_cache", ".pytest_cache", ".ruff_cache", "build", "dist", ".eggs"}
MAX_PROJECT_BYTES = 8_000_000


class TaskError(ValueError):
    """The input cannot be repaired as given (missing file, target does not parse, ...)."""


class Task(BaseModel):
    """One repair job, complete enough to resume it with nothing else."""

    kind: Literal["function", "project"]
    files: dict[str, str] = Field(description="The workspace: relative path -> text (the original snapshot).")
    editable: list[str] = Field(description="Files a patch may change (never test files).")
    test_paths: list[str] = Field(default_factory=list, description="Arguments to pytest; empty: its discovery.")
    root: str | None = Field(None, description="The project directory a diff applies to (--apply).")
    problem: str = Field("", description="Natural-language description of what the code should do.")
    entry_point: str | None = Field(None, description="Function-level: the function under repair.")


class TestOutcome(BaseModel):
    __test__ = False  # not a pytest test class
    id: str
    outcome: Literal["passed", "failed", "error", "skipped"]
    message: str = ""
    test_file: str = ""
    test_line: int | None = Field(None, description="The line of the test file where the test failed.")
    error_type: str = ""


class TestReport(BaseModel):
    """The outcome of one pytest run over a workspace; infrastructure trouble is in `problem`."""

    __test__ = False

    outcomes: list[TestOutcome] = Field(default_factory=list)
    coverage: dict[str, list[tuple[str, int]]] = Field(default_factory=dict, description="test id -> lines run.")
    problem: str = Field("", description="Why the tests could not run at all (collection error, crash, timeout).")
    tampered: list[str] = Field(default_factory=list, description="Why this run cannot be trusted: pytest's "
                                "machinery, the driver or its outcomes were changed by the code under test.")
    confirmation: Confirmation | None = Field(None, description="An all-passing run's independent re-run.")
    duration_s: float = 0.0

    @property
    def passed(self) -> int:
        return sum(o.outcome == "passed" for o in self.outcomes)

    @property
    def total(self) -> int:
        return sum(o.outcome != "skipped" for o in self.outcomes)

    @property
    def failing(self) -> list[TestOutcome]:
        return [o for o in self.outcomes if o.outcome in ("failed", "error")]

    def passing_ids(self) -> set[str]:
        return {o.id for o in self.outcomes if o.outcome == "passed"}


def function_task(target: Path, tests: Path, problem: str = "") -> Task:
    """A target file and a pytest file that imports it by its stem."""
    for path in (target, tests):
        if not path.is_file():
            raise TaskError(f"no such file: {path}")
    if target.name == tests.name:
        raise TaskError("the target and the tests must be different files")
    files = {target.name: _read_text(target), tests.name: _read_text(tests)}
    _check_parses(target.name, files[target.name])
    _check_parses(tests.name, files[tests.name])
    entry = _single_function(files[target.name])
    return Task(kind="function", files=files, editable=[target.name], test_paths=[tests.name],
                root=str(target.parent.resolve()),
                problem=problem or _docstring(files[target.name], entry), entry_point=entry)


def project_task(root: Path) -> Task:
    """A snapshot of a project directory; the editable files are its Python files that are not tests."""
    if not root.is_dir():
        raise TaskError(f"no such directory: {root}")
    files = _snapshot(root.resolve())
    python = [p for p in files if p.endswith(".py")]
    tests = [p for p in python if is_test_file(p)]
    if not tests:
        raise TaskError(f"no test files (test_*.py or *_test.py) under {root}")
    editable = sorted(p for p in python if not is_test_file(p) and Path(p).name != "conftest.py")
    if not editable:
        raise TaskError(f"no Python files to repair under {root} (only tests)")
    for path in editable:
        _check_parses(path, files[path])
    return Task(kind="project", files=files, editable=editable, root=str(root.resolve()))


def is_test_file(path: str) -> bool:
    name = Path(path).name
    parts = Path(path).parts[:-1]
    return name.startswith("test_") or name.endswith("_test.py") or "tests" in parts or "test" in parts


def _snapshot(root: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _SKIP_DIRS or part.endswith(".egg-info") for part in relative.parts) or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary data stays out of the workspace; tests needing it will show as failing
        total += len(text)
        if total > MAX_PROJECT_BYTES:
            raise TaskError(f"{root} holds more than {MAX_PROJECT_BYTES} bytes of text; point at a smaller project")
        files[relative.as_posix()] = text
    return files


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskError(f"{path} is not UTF-8 text") from exc


def _check_parses(name: str, source: str) -> None:
    try:
        ast.parse(source, filename=name)
    except SyntaxError as exc:
        raise TaskError(f"{name} does not parse: line {exc.lineno}: {exc.msg}") from exc


def _single_function(source: str) -> str | None:
    names = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    return names[-1] if names else None


def _docstring(source: str, function: str | None) -> str:
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return ast.get_docstring(node) or ""
    return ""


def _host_site_paths() -> list[str]:
    """Where this process finds pytest: in a venv that is not the sandbox interpreter's own site-packages."""
    import site

    return [p for p in site.getsitepackages() if not p.startswith(sys.base_prefix + os.sep)]


class TestRunner:
    """Runs pytest over workspaces in the sandbox, several at once, and parses the per-test results."""

    __test__ = False

    def __init__(self, pool: JobRunner, *, test_timeout_s: float = 5.0, run_timeout_s: float = 120.0) -> None:
        self.pool = pool
        self.test_timeout_s = test_timeout_s
        # The driver's own timer stops each test; the outer limit only catches what escapes it. The output cap
        # fits a large suite's report (per-test coverage included): a report cut short is a failed run.
        self.limits = outer_limits(per_unit_s=run_timeout_s, start_s=0.0, output_bytes=256_000_000)
        self._driver = package_files("agent").joinpath("_pytest_driver.py").read_text(encoding="utf-8")
        self._confirmer = Confirmer(pool, test_timeout_s=test_timeout_s, limits=self.limits,
                                    site_paths=_host_site_paths())

    def run(self, task: Task, workspaces: Sequence[dict[str, str]], *, confirm: bool = False) -> list[TestReport]:
        """One report per workspace. With `confirm`, a report in which every test passes also carries its
        independent confirmation, started as soon as that report is in, ahead of the runs still waiting."""
        futures = [self._submit(task, files) for files in workspaces]
        if not confirm:
            return [parse_report(future.result(), set(task.editable)) for future in futures]
        with ThreadPoolExecutor(max_workers=min(len(futures), 8) or 1, thread_name_prefix="confirm") as waiting:
            reports = [waiting.submit(self._confirmed, task, files, future)
                       for files, future in zip(workspaces, futures, strict=True)]
            return [report.result() for report in reports]

    def confirm(self, task: Task, workspace: dict[str, str], test_ids: list[str]) -> Confirmation:
        """An independent re-run of `test_ids` over `workspace` in fresh jobs (agent/verdict.py)."""

        def pytest_run(ids: list[str]) -> TestReport:
            narrowed = task.model_copy(update={"test_paths": ids})
            return parse_report(self._submit(narrowed, workspace, urgent=True).result(), set(task.editable))

        return self._confirmer.confirm(workspace, test_ids, pytest_run)

    def _submit(self, task: Task, files: dict[str, str], urgent: bool = False) -> Future[JobResult]:
        data = {"paths": task.test_paths, "test_timeout_s": self.test_timeout_s, "site_paths": _host_site_paths()}
        return self.pool.submit_job(Job(program=self._driver, data=data, files=dict(files), limits=self.limits),
                                    urgent=urgent)

    def _confirmed(self, task: Task, files: dict[str, str], future: Future[JobResult]) -> TestReport:
        report = parse_report(future.result(), set(task.editable))
        if report.outcomes and not report.failing and not report.tampered and not report.problem:
            report = report.model_copy(update={"confirmation": self.confirm(task, dict(files),
                                                                             sorted(report.passing_ids()))})
        return report


def parse_report(result: JobResult, editable: set[str]) -> TestReport:
    """The driver's record; a job that did not end properly (crash, timeout, a forged report) is `problem`."""
    duration = result.execution.duration_s
    if not result.ok or len(result.records) != 1:
        reason = result.problem or f"the test driver sent {len(result.records)} reports, not one"
        return TestReport(problem=f"the test run failed: {reason}", duration_s=duration)
    try:
        return _report_of(result.records[0], editable, duration)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # pydantic's ValidationError is a ValueError
        return TestReport(problem=f"the test run failed: the driver's report is malformed ({exc!r:.200})",
                          duration_s=duration)


def _report_of(data: dict, editable: set[str], duration: float) -> TestReport:
    coverage = {test: [(f, line) for f, line in lines if f in editable] for test, lines in data["coverage"].items()}
    problem = ""
    if data["collect_errors"]:
        problem = "pytest could not collect the tests:\n" + "\n".join(
            f"{e['id']}: {e['message']}" for e in data["collect_errors"])[-3000:]
    elif not data["tests"]:
        problem = f"pytest found no tests (exit code {data['exit_code']})"
    return TestReport(outcomes=[TestOutcome(**t) for t in data["tests"]], coverage=coverage, problem=problem,
                      tampered=[str(t) for t in data["tampered"]], duration_s=duration)


ENVIRONMENT_ERRORS = ("ModuleNotFoundError", "ImportError", "FileNotFoundError", "PermissionError")


def environment_problem(report: TestReport, editable: set[str]) -> str:
    """A reason the tests fail for reasons no patch to the code can fix, or ''."""
    if report.problem:
        return report.problem
    failing = report.failing
    if failing and all(o.error_type in ENVIRONMENT_ERRORS for o in failing):
        missing = _missing_module(failing[0].message)
        if missing is not None and not any(Path(p).stem == missing.split(".")[0] for p in editable):
            return f"every failing test fails to import {missing!r}, which is not part of the code under repair:\n" \
                   f"{failing[0].message[-1500:]}"
    return ""


def _missing_module(message: str) -> str | None:
    marker = "No module named "
    if marker not in message:
        return None
    return message.split(marker, 1)[1].split()[0].strip("'\"")
