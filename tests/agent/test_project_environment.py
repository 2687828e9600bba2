"""A project's own environment: its venv is found, its plugins load, its src layout imports, its errors are its own.

Each test builds a real project and a real venv (`--system-site-packages` over this interpreter, so pytest is
there without a network), installs the project editable and a small pytest plugin into it offline, and runs
`semcoder repair` as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from agent_helpers import SEMCODER, write

from agent.environment import detect

PLUGIN = {
    "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
                      '[project]\nname = "pytest-limits"\nversion = "0.1"\n\n'
                      '[project.entry-points.pytest11]\nlimits = "pytest_limits"\n',
    "pytest_limits.py": "import pytest\n\n\n@pytest.fixture\ndef limit():\n    return 10\n",
}
PROJECT = {
    "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
                      '[project]\nname = "clampy"\nversion = "0.1"\n\n[tool.setuptools.packages.find]\nwhere = ["src"]\n',
    "src/clampy/__init__.py": "def clamp(x, limit):\n    return x if x < limit else limit - 1\n",
    "tests/test_clamp.py": "from clampy import clamp\n\n\ndef test_below(limit):\n    assert clamp(3, limit) == 3\n\n\n"
                           "def test_above(limit):\n    assert clamp(12, limit) == 10\n",
    "examples/py2_script.py": "print 'a Python 2 example that does not parse'\n",
}


def _pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation",
                    *args], check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = write(tmp_path_factory.mktemp("envproj") / "clampy", PROJECT)
    plugin = write(root.parent / "plugin", PLUGIN)
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=300)
    _pip(venv, "-e", str(root))
    _pip(venv, str(plugin))
    return root


def repair(*args: str) -> tuple[int, dict, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    done = subprocess.run([*SEMCODER, "repair", "--json", *args], capture_output=True, text=True, timeout=600, env=env)
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_the_projects_venv_is_found_and_used(project: Path, tmp_path: Path) -> None:
    assert detect(project).source == ".venv"
    code, out, err = repair(str(project), "--db", str(tmp_path / "runs.sqlite"))
    assert out["isolation"]["python"] == str(project / ".venv" / "bin" / "python"), out
    # The plugin's fixture (an entry point of the venv), the editable src/ install: both work in the sandbox.
    assert (code, out["status"], out["tests_passed"], out["tests_total"]) == (0, "fixed", 2, 2), err
    assert "-    return x if x < limit else limit - 1\n+    return x if x < limit else limit" in out["diff"]
    assert any("examples/py2_script.py" in note for note in out["notes"])  # left out, with a note


def test_without_the_plugin_a_missing_fixture_is_an_environment_error(project: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(project, bare, ignore=shutil.ignore_patterns(".venv"))
    venv = bare / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=300)
    _pip(venv, "-e", str(bare))
    code, out, _err = repair(str(bare), "--db", str(tmp_path / "runs.sqlite"))
    assert (code, out["status"]) == (2, "error")
    assert "fixture" in out["stop_reason"] and "'limit' not found" in out["stop_reason"], out["stop_reason"]
    assert out["iterations"] == 0  # never "repaired"


def test_an_explicit_python_that_is_not_one_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "p", {"m.py": "def f():\n    return 1\n", "test_m.py": "from m import f\n\ndef test_f():\n"
                                                                                   "    assert f() == 2\n"})
    code, out, err = repair(str(tmp_path / "p"), "--python", str(tmp_path / "nope"), "--db", str(tmp_path / "r.sqlite"))
    assert code == 2 and out["status"] == "error" and "not an interpreter or a virtual environment" in err


def test_pytest_args_after_a_double_dash_select_the_tests(project: Path, tmp_path: Path) -> None:
    _code, out, err = repair(str(project), "--db", str(tmp_path / "runs.sqlite"), "--", "tests/test_clamp.py",
                            "-k", "above")
    assert (out["status"], out["tests_total"]) == ("fixed", 1), err


def test_a_usage_error_is_reported_in_pytests_words(tmp_path: Path) -> None:
    root = write(tmp_path / "cov", {"m.py": "def f():\n    return 1\n",
                                    "test_m.py": "from m import f\n\n\ndef test_f():\n    assert f() == 2\n",
                                    "setup.cfg": "[tool:pytest]\naddopts = --cov=m\n"})
    _code, out, _err = repair(str(root), "--db", str(tmp_path / "r.sqlite"))
    assert out["status"] == "error"
    assert "usage error" in out["stop_reason"] and "--cov" in out["stop_reason"], out["stop_reason"]


def test_candidates_run_the_failing_tests_and_their_file_first(tmp_path: Path, run_graph) -> None:
    """A candidate first runs the failing test's file (the failing tests and their regression set); only one
    that passes all of those runs the whole suite; the final one is confirmed."""
    from agent.state import RunConfig
    from agent.tasks import project_task

    other = "".join(f"\n\ndef test_other_{i}():\n    assert True\n" for i in range(4))
    root = write(tmp_path / "staged", {
        "calc.py": "def double(x):\n    return x + x + 1\n",
        "tests/test_calc.py": "from calc import double\n\n\ndef test_two():\n    assert double(1) == 2\n\n\n"
                              "def test_zero_is_odd_here():\n    assert double(0) != 3\n",
        "tests/test_other.py": other})
    final = run_graph(project_task(root), RunConfig(mutants_per_step=6))
    tested = [t for h in final["history"] if h["node"] == "execute" for t in h["tested"]]
    assert tested[0]["total"] == 6  # the baseline runs everything
    assert any(t["total"] == 2 for t in tested[1:]), tested  # a failing candidate ran only tests/test_calc.py
    assert final["status"] == "fixed" and final["best"]["report"]["selection"] is None
    assert final["best"]["confirmation"].startswith("6 by the plugin-free runner")
    assert set(final["baseline_durations"]) == {t["id"] for t in final["best"]["report"]["outcomes"]}


def _old_python() -> Path | None:
    versions = sorted(Path.home().glob(".pyenv/versions/3.8.*/bin/python3.8"))
    return versions[-1] if versions else None


@pytest.mark.slow
@pytest.mark.skipif(_old_python() is None, reason="no Python 3.8 under pyenv")
def test_a_project_on_python_3_8_is_repaired_in_its_own_interpreter(tmp_path: Path) -> None:
    """semcoder's in-sandbox programs (fork server, job runtime, pytest driver, confirmation runner) run on 3.8."""
    root = write(tmp_path / "old", {"stats.py": "def mean(xs):\n    return sum(xs) / (len(xs) + 1)\n",
                                    "test_stats.py": "from stats import mean\n\n\ndef test_mean():\n"
                                                     "    assert mean([2, 4]) == 3\n"})
    venv = root / ".venv"
    subprocess.run([str(_old_python()), "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "pytest<8.4"], check=True,
                   capture_output=True, timeout=600)
    code, out, err = repair(str(root), "--db", str(tmp_path / "runs.sqlite"))
    assert out["isolation"]["python_version"].startswith("3.8."), out["isolation"]
    assert (code, out["status"], out["confirmation"]) == (0, "fixed", "1 by the plugin-free runner"), err


def test_node_ids_are_targets_and_old_failures_in_their_files_are_left_alone(tmp_path: Path, run_graph) -> None:
    """`-- tests/test_calc.py::test_two`: the file runs whole, test_broken (already failing, not asked about)
    neither blocks `fixed` nor is counted; a binary fixture is in the workspace; --env reaches the tests."""
    from agent.state import RunConfig
    from agent.tasks import project_task, with_targets

    root = write(tmp_path / "targets", {
        "calc.py": "def double(x):\n    return x + x + 1\n",
        "tests/test_calc.py": "import os\nfrom calc import double\n\n\ndef test_two():\n    assert double(1) == 2\n\n\n"
                              "def test_fixture_and_env():\n    with open('tests/blob.bin', 'rb') as f:\n"
                              "        assert f.read() == bytes([0, 255, 254])\n    assert os.environ['MODE'] == 'x'\n\n\n"
                              "def test_broken():\n    assert False, 'broken before and after'\n"})
    (root / "tests" / "blob.bin").write_bytes(bytes([0, 255, 254]))
    task = with_targets(project_task(root), ["tests/test_calc.py::test_two"]).model_copy(update={"env": {"MODE": "x"}})
    assert task.test_paths == ["tests/test_calc.py"] and "tests/blob.bin" not in task.files | task.data  # linked
    final = run_graph(task, RunConfig(mutants_per_step=6))
    assert final["baseline_ignored"] == ["tests/test_calc.py::test_broken"]
    assert "tests/test_calc.py::test_fixture_and_env" in final["baseline_passing"]
    assert final["status"] == "fixed", final["stop_reason"]
    assert {o["id"] for o in final["best"]["report"]["outcomes"]} == {
        "tests/test_calc.py::test_two", "tests/test_calc.py::test_fixture_and_env"}


def test_a_name_the_tests_import_is_added(tmp_path: Path, run_graph) -> None:
    """The test file cannot be collected (it imports a function the code lacks): that is the bug, not the
    environment; the model is asked to add the function and its answer is spliced in."""
    from agent_helpers import ScriptedModel, refined

    from agent.state import RunConfig
    from agent.tasks import project_task

    root = write(tmp_path / "adds", {
        "pkg/__init__.py": "", "pkg/util.py": "import re\n\n\ndef strip(s):\n    return s.strip()\n",
        "tests/test_util.py": "from pkg.util import strip, shout\n\n\ndef test_strip():\n    assert strip(' a ') == 'a'\n\n\n"
                              "def test_shout():\n    assert shout('a') == 'A!'\n"})
    model = ScriptedModel([[refined("def shout(s):\n    return s.upper() + '!'\n")]])
    final = run_graph(project_task(root), RunConfig(model="x:y", patcher="model", samples=1, max_iterations=2), model)
    traces = [h for h in final["history"] if h["node"] == "trace"]
    assert traces[0]["focus"] == "pkg/util.py::shout", traces
    assert "uses `shout`, which `pkg/util.py` does not define" in model.prompts[0]
    assert final["status"] == "fixed", final["stop_reason"]
    assert "def shout(s):" in final["best"]["files"]["pkg/util.py"]


def test_env_options_are_checked(tmp_path: Path) -> None:
    root = write(tmp_path / "envs", {"m.py": "def f():\n    return 1\n",
                                     "test_m.py": "from m import f\n\n\ndef test_f():\n    assert f() == 2\n"})
    for bad, said in (("NOPE", "expected NAME=VALUE"), ("HOME=/root", "the sandbox sets HOME itself")):
        code, out, _err = repair(str(root), "--db", str(tmp_path / "r.sqlite"), "--env", bad)
        assert code == 2 and out["status"] == "error" and said in out["stop_reason"], out
