"""A repair verdict the code under test cannot forge: a static screen, tamper checks, an independent confirmation.

Three layers, because the code under test runs in the same process as the runner that scores it:
1. `screen`: a candidate's diff must not add what a bug fix does not need and a forged pass does
   (pytest internals in non-test code, atexit, gc, ctypes, sys.modules or builtins assignment, os._exit,
   tracing hooks, writes to fds 1/2, dynamic imports of those). Flagged candidates are rejected before
   they run, unless the user allows them (`--allow-suspicious`).
2. The test driver's tamper checks (agent/_pytest_driver.py): a report whose run changed pytest's machinery,
   the driver's state or an outcome is `tampered` and its candidate rejected.
3. `confirm`: before a run ends `fixed`, the winner's tests are run again in a fresh job by a different
   runner (agent/_confirm_runner.py: each test called directly, no plugins, no conftest); tests that runner
   cannot run faithfully are confirmed by a fresh pytest job, and the confirmation says how many went which way.
The same functions judge PyX-R's verified fixes (training/data), so a forged fix never becomes training data.
"""

from __future__ import annotations

import ast
import functools
from collections import Counter
from importlib.resources import files as package_files

from pydantic import BaseModel, Field

from sandbox import Job, JobRunner

# Module imports no bug fix needs in the code under repair.
_SUSPICIOUS_MODULES = {"_pytest", "pytest", "atexit", "gc", "ctypes", "_ctypes", "pluggy", "_semcoder_job",
                       "faulthandler", "tracemalloc"}
_SUSPICIOUS_CALLS = {"os._exit", "sys.settrace", "sys.setprofile", "threading.settrace", "threading.setprofile",
                     "os.dup2", "os.fdopen", "os.kill", "sys.monitoring.register_callback", "sys._getframe",
                     "os.closerange"}
_ASSIGNED_NAMES = {"sys.modules", "sys.stdout", "sys.stderr", "sys.exit", "sys.__stdout__", "sys.__stderr__",
                   "builtins", "__builtins__", "os._exit", "os.write"}


class Confirmation(BaseModel):
    """The independent re-run's account of a candidate's tests."""

    confirmed: bool
    by_runner: int = Field(0, description="Tests that passed under the plugin-free runner.")
    by_pytest: int = Field(0, description="Tests the runner could not call faithfully, passed in a fresh pytest job.")
    failures: list[str] = Field(default_factory=list, description="Why it was not confirmed.")

    def summary(self) -> str:
        if not self.confirmed:
            return "confirmation failed: " + "; ".join(self.failures[:3])
        via = f"{self.by_runner} by the plugin-free runner"
        return via + (f", {self.by_pytest} by a fresh pytest job (they need fixtures)" if self.by_pytest else "")


def screen(original: dict[str, str], candidate: dict[str, str], test_files: set[str] = frozenset()) -> list[str]:
    """What a candidate adds to the non-test code that a bug fix does not need; [] for a clean diff.

    Only additions count: a construct the original already had (the same number of times) is not flagged.
    """
    flags = []
    for path, text in sorted(candidate.items()):
        if path in test_files or text == original.get(path) or not path.endswith(".py"):
            continue
        added = _features(text) - _features(original.get(path, ""))  # new Counters: the cached ones stay as they are
        flags += [f"{path}: {feature}" for feature in sorted(added.elements())]
    return flags


@functools.lru_cache(maxsize=16)  # the original's features are compared with every candidate's
def _features(source: str) -> Counter[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return Counter()
    found: Counter[str] = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            for name in names:
                if name.split(".")[0] in _SUSPICIOUS_MODULES:
                    found[f"imports {name.split('.')[0]}"] += 1
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in _SUSPICIOUS_CALLS:
                found[f"calls {name}"] += 1
            elif name in ("__import__", "importlib.import_module") and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                    and node.args[0].value.split(".")[0] in _SUSPICIOUS_MODULES | {"os", "sys", "builtins"}:
                found[f"imports {node.args[0].value} dynamically"] += 1
            elif name == "os.write" and node.args and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value in (1, 2):
                found[f"writes to fd {node.args[0].value}"] += 1
            elif name in ("setattr", "delattr") and node.args and _dotted(node.args[0]) in ("sys", "builtins", "os",
                                                                                        "json", "__builtins__"):
                found[f"calls {name} on {_dotted(node.args[0])}"] += 1
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            for target in targets:
                base = target.value if isinstance(target, ast.Subscript) else target
                name = _dotted(base)
                if name in _ASSIGNED_NAMES or (name or "").startswith(("builtins.", "__builtins__.", "json.", "sys.")):
                    found[f"assigns {name}"] += 1
    return found


def _is_record(record: object) -> bool:
    return (isinstance(record, dict) and isinstance(record.get("id"), str)
            and record.get("outcome") in ("passed", "failed", "missing", "unconfirmable")
            and isinstance(record.get("message"), str))


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class Confirmer:
    """Confirms a candidate's passing tests in fresh jobs on the run's own sandbox."""

    def __init__(self, pool: JobRunner, *, test_timeout_s: float, limits, site_paths: list[str],
                 project_env: bool = True) -> None:
        self._pool = pool
        self._timeout = test_timeout_s
        self._limits = limits
        self._site_paths = site_paths
        self._project_env = project_env
        self._program = package_files("agent").joinpath("_confirm_runner.py").read_text(encoding="utf-8")

    def confirm(self, workspace: dict[str, str], test_ids: list[str], pytest_run,
                project_root: str | None = None, env: dict[str, str] | None = None,
                timeouts: dict[str, float] | None = None, tree: str | None = None) -> Confirmation:
        """`pytest_run(ids)` runs the ids the runner could not call faithfully in a fresh pytest job and
        returns their TestReport (the caller's own driver, so its tamper checks apply there too). `tree`: the
        project the job sees read-only around the workspace, as the runs it confirms did (sandbox.Job.tree)."""
        if not test_ids:
            return Confirmation(confirmed=False, failures=["no test to confirm"])
        data = {"tests": test_ids, "test_timeout_s": self._timeout, "test_timeouts": timeouts or {}, "site_paths": self._site_paths,
                "project_env": self._project_env, "project_root": project_root}
        result = self._pool.submit_job(Job(program=self._program, data=data, files=dict(workspace), env=env or {},
                                           limits=self._limits, tree=tree), urgent=True).result()
        if not result.ok:
            return Confirmation(confirmed=False, failures=[f"the confirmation run failed: {result.problem}"])
        seen = {r["id"]: r for r in result.records if _is_record(r)}
        if len(seen) != len(result.records):
            return Confirmation(confirmed=False, failures=["the confirmation run sent a malformed record"])
        failures = [f"{i}: {seen[i]['outcome']}: {seen[i]['message'][:300]}" for i in test_ids
                    if i not in seen or seen[i]["outcome"] in ("failed", "missing")]
        if len(seen) != len(test_ids) or set(seen) != set(test_ids):
            failures.append("the confirmation run did not report every test")
        deferred = [i for i in test_ids if i in seen and seen[i]["outcome"] == "unconfirmable"]
        by_runner = sum(1 for i in test_ids if i in seen and seen[i]["outcome"] == "passed")
        if deferred and not failures:
            report = pytest_run(deferred)
            passing = report.passing_ids()
            if report.problem or report.tampered or not set(deferred) <= passing:
                failures.append("the fresh pytest run of " + ", ".join(deferred[:3]) + " did not pass them: "
                                + (report.problem or "; ".join(report.tampered) or "some failed")[:300])
        return Confirmation(confirmed=not failures, by_runner=by_runner, by_pytest=len(deferred),
                            failures=failures)
