"""What to repair and how to test it: a workspace of files, the editable ones, and pytest in the sandbox.

Both task kinds reduce to the same thing. A function-level task is a two-file workspace (the target
and a pytest file importing it by its stem); a project-level task is a snapshot of a directory's Python
source and config (what a patch may change and what pytest reads), and every test run also sees the rest of
the directory, read-only and linked, never copied (`project_tree`, sandbox/_tree.py). The original files are
never touched: every test run happens in a fresh sandbox working dir.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import re
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.resources import files as package_files
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from agent.verdict import Confirmation, Confirmer
from sandbox import Job, JobResult, JobRunner
from sandbox.job import Preload, outer_limits, preloadable

# Folders whose files are never snapshotted (they are linked into the workspace whole, like any other folder).
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", "env", "node_modules", ".tox", ".nox",
              ".mypy_cache", ".pytest_cache", ".ruff_cache", "build", "dist", ".eggs"}
# What the snapshot holds (Task.files): Python source and config text, each file up to MAX_SOURCE_FILE_BYTES. The
# rest of a project (data, fixtures, docs, larger or non-UTF-8 files) is never read: test runs see it linked.
SOURCE_SUFFIXES = (".py", ".pyi", ".cfg", ".ini", ".toml")
SNAPSHOT_NAMES = frozenset({"AGENTS.md"})  # the project's instructions for coding agents (its root's is the model's)
MAX_SOURCE_FILE_BYTES = 1_000_000
MAX_PROJECT_BYTES = 8_000_000  # of the snapshot's text; the rest of the project has no limit
MAX_DATA_BYTES = 16_000_000  # an uploaded archive's other files (Task.data): beyond it they are left out, with a note


class TaskError(ValueError):
    """The input cannot be repaired as given (missing file, target does not parse, ...)."""


class Task(BaseModel):
    """One repair job, complete enough to resume it with nothing else."""

    kind: Literal["function", "project"]
    files: dict[str, str] = Field(description="The workspace: relative path -> text (the original snapshot; of a "
                                  "project on disk, its source and config: test runs see the rest linked, "
                                  "see project_tree).")
    editable: list[str] = Field(description="Files a patch may change (never test files).")
    test_paths: list[str] = Field(default_factory=list, description="Arguments to pytest; empty: its discovery.")
    root: str | None = Field(None, description="The project directory a diff applies to (--apply).")
    problem: str = Field("", description="What the code should do, in words (shown to the model; function-level "
                         "default: the function's docstring).")
    entry_point: str | None = Field(None, description="Function-level: the function under repair (default: the last "
                                    "top-level function of the file).")
    notes: list[str] = Field(default_factory=list, description="What the task left out and why (files that do "
                             "not parse, ...).")
    data: dict[str, str] = Field(default_factory=dict, description="An unpacked archive's other files (fixtures, "
                                 "data), relative path -> base64: the tests read them, patches never change them. "
                                 "Empty for a project on disk: its tests see those files linked from `root`.")
    targets: list[str] = Field(default_factory=list, description="The node ids the user asked to repair (their files "
                               "are in test_paths: the other tests there guard against regressions, and those that "
                               "already failed are left alone); empty: every failing test.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables the tests run under "
                                "(a locale, a settings module), on top of the sandbox's own; HOME, TMPDIR and PATH "
                                "stay the sandbox's.")


class TestOutcome(BaseModel):
    __test__ = False  # not a pytest test class
    id: str
    outcome: Literal["passed", "failed", "error", "skipped"]
    message: str = ""
    test_file: str = ""
    test_line: int | None = Field(None, description="The line of the test file where the test failed.")
    error_type: str = ""
    duration_s: float = Field(0.0, description="The test's call phase, as pytest timed it.")


class TestReport(BaseModel):
    """The outcome of one pytest run over a workspace; infrastructure trouble is in `problem`."""

    __test__ = False

    outcomes: list[TestOutcome] = Field(default_factory=list)
    coverage: dict[str, list[tuple[str, int]]] = Field(default_factory=dict, description="test id -> lines run.")
    problem: str = Field("", description="Why the tests could not run at all (collection error, crash, timeout).")
    tampered: list[str] = Field(default_factory=list, description="Why this run cannot be trusted: pytest's "
                                "machinery, the driver or its outcomes were changed by the code under test.")
    confirmation: Confirmation | None = Field(None, description="An all-passing run's independent re-run.")
    selection: list[str] | None = Field(None, description="The test ids this run was narrowed to (None: the task's "
                                        "whole selection).")
    duration_s: float = 0.0
    ignored_passed: int = Field(0, description="Tests left out of this report (failures the user did not ask "
                                "about) that passed in it.")

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

    def without(self, ignored: set[str]) -> TestReport:
        """This report as if `ignored` (failures the user did not ask about) had not run."""
        if not ignored:
            return self
        return self.model_copy(update={
            "ignored_passed": sum(o.outcome == "passed" for o in self.outcomes if o.id in ignored),
            "outcomes": [o for o in self.outcomes if o.id not in ignored],
            "coverage": {test: lines for test, lines in self.coverage.items() if test not in ignored}})


# pytest options whose value is the next argument (a --deselect node id is not a target).
_VALUED_OPTIONS = {"-k", "-m", "-o", "-p", "-c", "-W", "--deselect", "--ignore", "--ignore-glob", "--rootdir",
                   "--confcutdir", "--basetemp", "--override-ini"}


def data_files(task: Task) -> dict[str, bytes]:
    """The task's other files as bytes, for a workspace (an uploaded archive's; a project on disk has none)."""
    return {path: base64.b64decode(encoded) for path, encoded in task.data.items()}


def project_tree(task: Task) -> str | None:
    """The directory a project task's test runs see read-only around the workspace (sandbox/_tree.py): its root.
    None for a function task (its two files are the whole workspace) and for an archive's task (no root)."""
    return task.root if task.kind == "project" and task.root else None


def with_targets(task: Task, selection: Sequence[str]) -> Task:
    """`selection` as pytest arguments, where node ids (file::test) become targets and their files are run whole."""
    targets = [arg for before, arg in zip(["", *selection], selection, strict=False)
               if "::" in arg and not arg.startswith("-") and before not in _VALUED_OPTIONS]
    paths: list[str] = []
    for arg in selection:
        path = arg.split("::", 1)[0] if arg in targets else arg
        if path not in paths:
            paths.append(path)
    return task.model_copy(update={"test_paths": [*task.test_paths, *paths], "targets": targets})


def narrowed_to(task: Task, test_ids: Sequence[str]) -> Task:
    """The task run on just these test ids, keeping the selection's pytest options (`-o addopts=`, `-p`, ...)."""
    options: list[str] = []
    for before, arg in zip(["", *task.test_paths], task.test_paths, strict=False):
        if arg.startswith("-") or (before in _VALUED_OPTIONS and "=" not in before):
            options.append(arg)
    return task.model_copy(update={"test_paths": [*options, *test_ids]})


def is_target(test_id: str, targets: Sequence[str]) -> bool:
    """Whether a test is one the user asked to repair: a target's node, one of its parametrisations, or a test
    of a targeted class (old pytest's Class::()::test spelling included)."""
    if not targets:
        return True
    test_id = test_id.replace("::()", "")
    if "::" not in test_id and any(t.split("::", 1)[0] == test_id for t in targets):
        return True  # a target's file that could not be collected
    return any(test_id == t or test_id.startswith((t + "[", t + "::")) for t in (t.replace("::()", "") for t in targets))


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


def project_task(root: Path, *, linked: bool = True) -> Task:
    """A snapshot of a project directory's source and config; the editable files are its Python files that are not
    tests. `linked`: its test runs see the rest of the directory in place (read-only, linked); otherwise (an archive
    unpacked into a directory that goes away) the rest is read into `Task.data`, up to MAX_DATA_BYTES."""
    if not root.is_dir():
        raise TaskError(f"no such directory: {root}")
    files, data, notes = _snapshot(root.resolve(), linked)
    python = [p for p in files if p.endswith(".py")]
    tests = [p for p in python if is_test_file(p)]
    if not tests:
        raise TaskError(f"no test files (test_*.py or *_test.py) under {root}")
    candidates = sorted(p for p in python if not is_test_file(p) and Path(p).name != "conftest.py")
    editable = []
    for path in candidates:
        try:
            _check_parses(path, files[path])
            editable.append(path)
        except TaskError as exc:  # a Python 2 example script, a template: not code a patch should touch
            notes.append(f"left out of the editable files: {exc}")
    if not editable:
        raise TaskError(f"no Python files to repair under {root} (only tests"
                        + (f"; {len(notes)} that do not parse" if notes else "") + ")")
    return Task(kind="project", files=files, data=data, editable=editable, root=str(root.resolve()), notes=notes)


def is_test_file(path: str) -> bool:
    name = Path(path).name
    parts = Path(path).parts[:-1]
    return name.startswith("test_") or name.endswith("_test.py") or "tests" in parts or "test" in parts


def _snapshot(root: Path, linked: bool = True) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(source and config text, other files as base64 when not `linked`, notes). Walks the tree without following
    symlinks and reads only the files the snapshot keeps: a data file of any size costs one stat."""
    files: dict[str, str] = {}
    data: dict[str, str] = {}
    total = data_total = 0
    left_out: list[str] = []  # not linked: unreadable, or past MAX_DATA_BYTES
    as_data: list[str] = []  # source-like files kept out of the snapshot (too large, not UTF-8): linked instead
    outside: list[str] = []  # symlinks that leave the tree
    private: list[str] = []  # entries other users may not read: the sandbox's own uid cannot either
    real_root = str(root)
    if linked and root.stat().st_mode & 0o005 != 0o005:
        private.append(".")
    pending = [""]
    while pending:
        directory = pending.pop()
        try:
            entries = sorted(os.scandir(root / directory), key=lambda entry: entry.name)
        except OSError:
            left_out.append(directory)
            continue
        for entry in entries:
            relative = f"{directory}/{entry.name}" if directory else entry.name
            try:
                if entry.is_symlink():
                    resolved = os.path.realpath(entry.path)
                    if resolved != real_root and not resolved.startswith(real_root + os.sep):
                        outside.append(relative)
                    continue  # a link is never snapshotted: the workspace keeps it as a link
                mode = entry.stat(follow_symlinks=False).st_mode
                if entry.is_dir(follow_symlinks=False):
                    if linked and mode & 0o005 != 0o005:
                        private.append(relative + "/")
                    if entry.name not in _SKIP_DIRS and not entry.name.endswith(".egg-info"):
                        pending.append(relative)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                size = entry.stat(follow_symlinks=False).st_size
                text = None
                if entry.name.endswith(SOURCE_SUFFIXES) or relative in SNAPSHOT_NAMES:
                    if size <= MAX_SOURCE_FILE_BYTES:
                        text = _utf8(Path(entry.path).read_bytes())
                    if text is None:
                        as_data.append(relative)
                if text is None and linked and not mode & 0o004:
                    private.append(relative)
                elif text is not None:
                    total += len(text)
                    if total > MAX_PROJECT_BYTES:
                        raise TaskError(f"{root} holds more than {MAX_PROJECT_BYTES} bytes of Python source and config "
                                        f"(*{', *'.join(SOURCE_SUFFIXES)} files), the most a repair snapshots; point "
                                        f"at the package or subproject to repair (data, docs and other files do not "
                                        f"count)")
                    files[relative] = text
                elif not linked:
                    if data_total + size > MAX_DATA_BYTES:
                        left_out.append(relative)
                    else:
                        data_total += size
                        data[relative] = base64.b64encode(Path(entry.path).read_bytes()).decode("ascii")
            except OSError:
                left_out.append(relative)
    notes = [_listed(f"left out of the workspace (unreadable, or past {MAX_DATA_BYTES} bytes of other files)",
                     left_out)] if left_out else []
    if as_data:
        notes.append(_listed(f"not part of the snapshot (over {MAX_SOURCE_FILE_BYTES} bytes, or not UTF-8): never "
                             f"edited, {'linked' if linked else 'copied'} as data", as_data))
    if outside:
        notes.append(_listed("symlinks that point outside the project do not reach their targets in the sandbox "
                             "(it sees only the project)", outside))
    if private:
        notes.append(_listed("not readable by other users, so neither by the sandbox's uid (it reads the project "
                             "read-only, as another user; `chmod o+rX` them if the tests need them)", private))
    return dict(sorted(files.items())), dict(sorted(data.items())), notes


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _listed(what: str, paths: list[str]) -> str:
    return f"{what}: " + ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")


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
        # semcoder's own interpreter stands in when the project has no environment: then its venv's
        # site-packages are added (pytest is there) and its plugins, not the project's, stay unloaded.
        own = getattr(pool, "python", None) is None
        self._env = {"site_paths": _host_site_paths() if own else [], "plugin_autoload": not own}
        self._confirmer = Confirmer(pool, test_timeout_s=test_timeout_s, limits=self.limits,
                                    site_paths=self._env["site_paths"], project_env=not own)
        # What a run of each task's original files imported (by the digest of those files): later runs of that task
        # whose workspace has the same paths ask the sandbox to import the environment's part of it ahead
        # (sandbox.job.Preload), so a candidate pays only for its own modules and its tests.
        self._imports: dict[str, dict[str, list[str]]] = {}
        self._digests: dict[int, tuple[dict[str, str], str]] = {}
        self._learning = threading.Lock()
        self._prepare = package_files("agent").joinpath("_pytest_preload.py").read_text(encoding="utf-8")

    def run(self, task: Task, workspaces: Sequence[dict[str, str]], *, confirm: bool = False,
            first: list[str] | None = None, timeouts: dict[str, float] | None = None,
            baseline: bool = False, ignore: set[str] | None = None, coverage: bool = True) -> list[TestReport]:
        """One report per workspace, all run at once.

        `first`: run only these test ids first (the failing tests and their regression set); a workspace that
        passes all of them then runs the task's whole selection. `confirm`: a report in which every test passes
        also carries its independent confirmation, started as soon as that report is in, ahead of the runs
        still waiting. `timeouts`: per-test limits (test id -> seconds) over the default. `baseline`: the
        original's run, whose durations set those limits: each test gets 10x the default, so a slow test is
        measured rather than cut. `ignore`: tests whose outcomes are left out of the reports (failures that were
        there before and are not the repair's targets). `coverage`: record each test's lines (the spectrum the
        localization ranks; tracing every line slows the tests, so candidates' runs go without it).
        """
        limits = _Limits(10 * self.test_timeout_s if baseline else self.test_timeout_s, timeouts or {})
        ignore = ignore or set()
        if not confirm and not first:
            futures = [self._submit(task, files, limits=limits, coverage=coverage) for files in workspaces]
            return [parse_report(future.result(), set(task.editable)).without(ignore) for future in futures]
        narrowed = narrowed_to(task, first) if first else task
        futures = [self._submit(narrowed, files, limits=limits, coverage=coverage) for files in workspaces]
        with ThreadPoolExecutor(max_workers=min(len(futures), 8) or 1, thread_name_prefix="stages") as waiting:
            reports = [waiting.submit(self._stages, task, files, future, first, confirm, limits, ignore, coverage)
                       for files, future in zip(workspaces, futures, strict=True)]
            return [report.result() for report in reports]

    def confirm(self, task: Task, workspace: dict[str, str], test_ids: list[str],
                timeouts: dict[str, float] | None = None) -> Confirmation:
        """An independent re-run of `test_ids` over `workspace` in fresh jobs (agent/verdict.py), each test under
        the same limit as in the run it confirms (`timeouts`, over the default)."""
        limits = _Limits(self.test_timeout_s, timeouts or {})

        def pytest_run(ids: list[str]) -> TestReport:
            narrowed = narrowed_to(task, ids)
            return parse_report(self._submit(narrowed, workspace, urgent=True, limits=limits, warm=False,
                                             coverage=False).result(),
                                set(task.editable))

        return self._confirmer.confirm({**data_files(task), **workspace}, test_ids, pytest_run, task.root, task.env,
                                       limits.per_test, tree=project_tree(task))

    def _submit(self, task: Task, files: dict[str, str], urgent: bool = False,
                limits: _Limits | None = None, warm: bool = True, coverage: bool = True) -> Future[JobResult]:
        """`warm`: the run may start in a sandbox that imported the environment's modules ahead (a confirmation
        does not: it is the independent run)."""
        limits = limits or _Limits(self.test_timeout_s, {})
        # The files this candidate changes: a sandbox that starts the next run ahead reads them while it waits. Those
        # whose change adds atexit: registrations from them are the patch's (the project's own are not).
        changed = sorted(path for path, text in files.items() if task.files.get(path) is not text)
        atexit_files = [path for path in changed
                        if files[path].count("atexit") > task.files.get(path, "").count("atexit")]
        data = {"paths": task.test_paths, "test_timeout_s": limits.default_s, "test_timeouts": limits.per_test,
                "project_root": task.root, "atexit_files": atexit_files, "coverage": coverage, "changed": changed,
                **self._env}
        digest = self._digest(task)
        learn = warm and digest not in self._imports and (files is task.files or files == task.files)
        if learn:
            data["report_imports"] = True
        preload = self._preload(digest, task, files) if warm else None
        future = self.pool.submit_job(Job(program=self._driver, data=data, files={**data_files(task), **files}, env=task.env,
                                          limits=self.limits, preload=preload, tree=project_tree(task)), urgent=urgent)
        if learn:
            future.add_done_callback(lambda done: self._learn(digest, done))
        return future

    def _digest(self, task: Task) -> str:
        """The identity of a task's original files (kept per files dict: a task's copies share it)."""
        with self._learning:
            known = self._digests.get(id(task.files))
            if known is not None and known[0] is task.files:
                return known[1]
        hashed = hashlib.blake2b(digest_size=16)
        for path in sorted(task.files):
            hashed.update(f"{len(path)}:{path}:{len(task.files[path])}:".encode())
            hashed.update(task.files[path].encode("utf-8", "surrogatepass"))
        with self._learning:
            if len(self._digests) >= 64:
                self._digests.pop(next(iter(self._digests)))
            self._digests[id(task.files)] = (task.files, hashed.hexdigest())
        return hashed.hexdigest()

    def _learn(self, digest: str, done: Future[JobResult]) -> None:
        try:
            result = done.result()
        except BaseException:
            return
        imports = result.records[0].get("imports") if result.ok and len(result.records) == 1 else None
        if isinstance(imports, dict):
            learnt = {key: [str(name) for name in imports.get(key, [])] for key in ("modules", "avoid", "compile")}
            rewrite = imports.get("rewrite") if isinstance(imports.get("rewrite"), dict) else {}
            learnt["rewrite"] = {key: [str(path) for path in rewrite.get(key, [])] for key in ("outside", "workspace")}
            with self._learning:
                self._imports.setdefault(digest, learnt)

    def _preload(self, digest: str, task: Task, files: dict[str, str]) -> Preload | None:
        """The environment's modules a run of `files` may have imported ahead: only for a workspace with the task's
        own paths (a new file could shadow one of them), and only what the original's run imported from outside it."""
        learnt = self._imports.get(digest)
        if learnt is None or files.keys() != task.files.keys():
            return None
        try:
            return Preload(modules=[name for name in learnt["modules"] if preloadable(name)],
                           avoid=[name for name in learnt["avoid"] if preloadable(name)], compile=learnt["compile"],
                           site_paths=self._env["site_paths"], site_pth=self._env["plugin_autoload"],
                           prepare=self._prepare, prepare_data=learnt["rewrite"], prestart=True)
        except ValueError:  # a name that is not a module name: no preload rather than a wrong one
            return None

    def _stages(self, task: Task, files: dict[str, str], future: Future[JobResult], first: list[str] | None,
                confirm: bool, limits: _Limits, ignore: set[str], coverage: bool = True) -> TestReport:
        report = parse_report(future.result(), set(task.editable)).without(ignore)
        if first:
            report = report.model_copy(update={"selection": list(first)})
            if _clean_pass(report):  # the failing tests and their neighbours pass: now the whole selection
                report = parse_report(self._submit(task, files, urgent=True, limits=limits, coverage=coverage).result(),
                                      set(task.editable)).without(ignore)
        if confirm and _clean_pass(report) and report.selection is None:
            report = report.model_copy(update={"confirmation": self.confirm(task, dict(files),
                                                                             sorted(report.passing_ids()),
                                                                             limits.per_test)})
        return report


class _Limits(NamedTuple):
    """Per-test time limits: a default, and test id -> seconds where the baseline measured the test."""

    default_s: float
    per_test: dict[str, float]


def _clean_pass(report: TestReport) -> bool:
    return bool(report.outcomes) and not report.failing and not report.tampered and not report.problem


def parse_report(result: JobResult, editable: set[str]) -> TestReport:
    """The driver's record; a job that did not end properly (crash, timeout, a forged report) is `problem`."""
    duration = result.execution.duration_s
    if not result.ok or len(result.records) != 1:
        reason = result.problem or f"the test driver sent {len(result.records)} reports, not one"
        return TestReport(problem=f"the test run failed: {reason}", duration_s=duration)
    try:
        return _report_of(result.records[0], editable, duration, result.execution.stderr)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # pydantic's ValidationError is a ValueError
        return TestReport(problem=f"the test run failed: the driver's report is malformed ({exc!r:.200})",
                          duration_s=duration)


_PYTEST_EXIT = {2: "interrupted", 3: "an internal error", 4: "a usage error", 5: "no tests collected"}


def _no_tests(exit_code: int, stderr: str) -> str:
    """Why a run has no test outcome, in pytest's own words (a config option it does not know, --cov without
    pytest-cov, ...), not a generic message."""
    what = _PYTEST_EXIT.get(exit_code, f"exit code {exit_code}")
    said = "\n".join(line for line in stderr.strip().splitlines() if line.strip())[-1500:]
    return f"pytest ran no test ({what}, exit code {exit_code})" + (f":\n{said}" if said else "")


def _report_of(data: dict, editable: set[str], duration: float, stderr: str = "") -> TestReport:
    coverage = {test: [(f, line) for f, line in lines if f in editable] for test, lines in data["coverage"].items()}
    problem = ""
    # A test file that cannot import a name from the code under repair (the fix adds a function) fails as a
    # test would, so the repair can add it; any other collection error is the environment's.
    missing = [e for e in data["collect_errors"] if missing_name(e["message"], editable) is not None]
    data["tests"] = [*data["tests"], *({"id": e["id"], "outcome": "error", "message": e["message"], "test_file": e["id"],
                                        "error_type": "ImportError"} for e in missing)]
    data["collect_errors"] = [e for e in data["collect_errors"] if e not in missing]
    if data["collect_errors"]:
        problem = "pytest could not collect the tests:\n" + "\n".join(
            f"{e['id']}: {e['message']}" for e in data["collect_errors"])[-3000:]
    elif not data["tests"]:
        problem = _no_tests(data["exit_code"], stderr)
    return TestReport(outcomes=[TestOutcome(**t) for t in data["tests"]], coverage=coverage, problem=problem,
                      tampered=[str(t) for t in data["tampered"]], duration_s=duration)


ENVIRONMENT_ERRORS = ("ModuleNotFoundError", "ImportError", "FileNotFoundError", "PermissionError")


def environment_problem(report: TestReport, editable: set[str]) -> str:
    """A reason the tests fail for reasons no patch to the code can fix, or ''."""
    if report.problem:
        return report.problem
    failing = report.failing
    fixtures = [o for o in failing if o.error_type == "FixtureLookupError"
                or (o.outcome == "error" and "fixture '" in o.message and "' not found" in o.message)]
    if failing and len(fixtures) == len(failing):
        return (f"{len(fixtures)} failing test(s) need a fixture that neither the project's conftest nor an "
                f"installed plugin provides (install the plugin in the project's environment, or pass --python):"
                f"\n{fixtures[0].message[-1500:]}")
    if failing and all(o.error_type in ENVIRONMENT_ERRORS for o in failing):
        missing = _missing_module(failing[0].message)
        if missing is not None and not any(Path(p).stem == missing.split(".")[0] for p in editable):
            return f"every failing test fails to import {missing!r}, which is not part of the code under repair:\n" \
                   f"{failing[0].message[-1500:]}"
    return ""


_MISSING_NAME = (re.compile(r"cannot import name '(\w+)' from '([\w.]+)'"),
                 re.compile(r"module '([\w.]+)' has no attribute '(\w+)'"))


def missing_name(message: str, editable: set[str] | Sequence[str]) -> tuple[str, str] | None:
    """(file, name) where `message` says an editable module lacks a name a test uses, else None."""
    for pattern in _MISSING_NAME:
        found = pattern.search(message)
        if found is None:
            continue
        name, module = found.groups() if pattern is _MISSING_NAME[0] else reversed(found.groups())
        stem = module.replace(".", "/")
        for path in sorted(editable):
            if path in (f"{stem}.py", f"{stem}/__init__.py") or path.endswith((f"/{stem}.py", f"/{stem}/__init__.py")):
                return path, name
    return None


def _missing_module(message: str) -> str | None:
    marker = "No module named "
    if marker not in message:
        return None
    return message.split(marker, 1)[1].split()[0].strip("'\"")
