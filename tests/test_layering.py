"""Imports flow one way: sandbox <- agent <- evals <- training (training may use only evals' loaders)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "sandbox", "evals", "training")
ALLOWED: dict[str, set[str]] = {
    "sandbox": set(),
    "agent": {"sandbox"},
    "evals": {"agent", "sandbox"},
    "training": {"agent", "sandbox", "evals"},
}
# training may reach into evals only for its dataset loaders.
TRAINING_EVALS_MODULES = ("evals.loaders",)


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def sibling_imports(package: str) -> list[tuple[Path, str]]:
    hits = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in PACKAGES and top != package:
                hits.append((path.relative_to(ROOT), module))
    return hits


@pytest.mark.parametrize("package", PACKAGES)
def test_import_direction(package: str) -> None:
    bad = [(str(p), m) for p, m in sibling_imports(package) if m.split(".")[0] not in ALLOWED[package]]
    assert not bad, f"{package} may import only {sorted(ALLOWED[package])}: {bad}"


def test_training_uses_only_evals_loaders() -> None:
    bad = []
    for path, module in sibling_imports("training"):
        if module.split(".")[0] != "evals":
            continue
        if module != "evals" and not any(module == m or module.startswith(m + ".") for m in TRAINING_EVALS_MODULES):
            bad.append((str(path), module))
    assert not bad, f"training may import from evals only {TRAINING_EVALS_MODULES}: {bad}"


def test_checker_sees_violations(tmp_path: Path) -> None:
    """The checker itself must catch a forbidden import, or the tests above prove nothing."""
    bad = tmp_path / "bad.py"
    bad.write_text("import evals.scoring\nfrom agent import graph\nfrom . import local\n")
    assert imported_modules(bad) == ["evals.scoring", "agent", "agent.graph"]


# What a command's start-up must not import: the model clients (openai, langchain, langgraph) for scoring samples,
# the trace renderers for `trace-batch --json`, and pydantic before a command that runs one sandbox has started it
# (sandbox.start_early: the sandbox's start-up then runs beside those imports). Each was most of that command's
# start-up; a module that imports one again at the top level puts it back.
LEAN_COMMANDS = {
    "evals.cli": ("openai", "langchain_core", "langgraph", "agent.completion", "evals.model_run"),
    "sandbox.tracer_cli": ("openai", "pydantic", "sandbox._render_semcoder", "sandbox._render_blocks",
                           "sandbox._render_cwm", "sandbox._render_monologue"),
    "sandbox.cli": ("pydantic",),
    "sandbox._early": ("pydantic", "sandbox._models"),
}


@pytest.mark.parametrize("module", sorted(LEAN_COMMANDS))
def test_a_commands_module_imports_nothing_it_does_not_need(module: str) -> None:
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(name for name in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    imported = set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))
    assert module in imported
    assert not imported & set(LEAN_COMMANDS[module]), sorted(imported & set(LEAN_COMMANDS[module]))
