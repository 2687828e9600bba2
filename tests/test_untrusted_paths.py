"""Untrusted code runs in the run's own sandbox backend, by one path: a sandbox job. This test walks the call sites.

Outside sandbox/, no module may build raw sandbox requests, pick a backend behind the caller's back (`sandbox.run`,
`backend_named`), or exec/eval/compile code in the host process; the tracer is always given the caller's runner;
and every program that runs inside the sandbox is a job program (`main(data, channel)`), listed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "evals", "training", "scripts")
# The in-sandbox programs: they run the untrusted code, inside a job, so exec() is their purpose.
JOB_PROGRAMS = {
    "agent/_pytest_driver.py",
    "agent/_confirm_runner.py",
    "evals/_harness.py",
    "evals/_failing_test.py",
    "sandbox/_tracer_child.py",
    "sandbox/_program_child.py",
    "training/data/_exec_driver.py",
}
# Programs a job program starts as a child inside the same sandbox (they speak the job frames too).
JOB_CHILDREN = {"training/data/_exec_child.py"}
# What a warm sandbox runs for a job program before its job exists (sandbox.job.Preload.prepare): it compiles the
# code the job will import, inside the sandbox, and runs none of it.
PREPARATIONS = {"agent/_pytest_preload.py"}
FORBIDDEN_IMPORTS = {"ExecRequest", "run", "backend_named", "shared_backend", "LocalBackend", "DockerBackend"}
FORBIDDEN_MODULES = {"sandbox._api", "sandbox._local", "sandbox._docker", "sandbox._worker", "sandbox._pool"}


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _violations(path: Path) -> list[str]:
    relative = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
    # Only a module that is itself an in-sandbox program may exec (not a host module holding one as a string).
    in_sandbox = relative in JOB_CHILDREN or (relative in JOB_PROGRAMS and _defines_job_main(tree)) or (
        relative in PREPARATIONS and _defines_prepare(tree))
    found = []
    for node in ast.walk(tree):
        where = f"{relative}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module in ("sandbox", *FORBIDDEN_MODULES):
            names = {a.name for a in node.names}
            if node.module in FORBIDDEN_MODULES or names & FORBIDDEN_IMPORTS:
                found.append(f"{where}: imports {node.module}.{sorted(names)} (use sandbox.Job / submit_job)")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "sandbox" \
                and node.attr in FORBIDDEN_IMPORTS:
            found.append(f"{where}: sandbox.{node.attr} (use the caller's pool: submit_job)")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if isinstance(func, ast.Name) and name in ("exec", "eval", "compile") and not in_sandbox:
                found.append(f"{where}: {name}() in the host process")
            if name in ("trace_call", "trace_batch") and not any(k.arg == "runner" for k in node.keywords):
                found.append(f"{where}: {name}() without the caller's runner (it would pick a backend itself)")
    return found


def test_no_untrusted_code_runs_by_another_path() -> None:
    violations = [v for path in _sources() for v in _violations(path)]
    assert not violations, "\n".join(violations)


def _defines_job_main(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.FunctionDef) and node.name == "main"
               and [a.arg for a in node.args.args] == ["data", "channel"] for node in tree.body)


def _defines_prepare(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.FunctionDef) and node.name == "prepare"
               and [a.arg for a in node.args.args] == ["data", "files", "workdir"] for node in tree.body)


def test_every_in_sandbox_program_is_a_job_program() -> None:
    """Each listed program defines main(data, channel), in its own source or in a program it holds as a string;
    no other module of the packages does."""
    declared = set()
    for path in [*_sources(), *(ROOT / "sandbox").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        embedded = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                    and isinstance(node.value, str) and "def main(data, channel)" in node.value]
        if _defines_job_main(tree) or any(_defines_job_main(ast.parse(source)) for source in embedded):
            declared.add(path.relative_to(ROOT).as_posix())
    assert declared == JOB_PROGRAMS


def test_the_walk_catches_a_bypass(tmp_path) -> None:
    """The walk itself can fail: a module that traces on its own backend or execs code is reported."""
    bad = ROOT / "agent" / "_walk_probe_tmp.py"
    bad.write_text("import sandbox\nfrom sandbox.tracer import trace_call\n\n"
                   "def f(code):\n    exec(code)\n    sandbox.run(code)\n    return trace_call(code, 'f()')\n")
    try:
        found = _violations(bad)
    finally:
        bad.unlink()
    assert len(found) == 3, found
