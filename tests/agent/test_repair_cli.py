"""`semcoder repair` end to end with no model: the mutation engine fixes seeded bugs in the real sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from agent_helpers import GRADE_TESTS, GRADES, ROOT, tree, write
from click.testing import CliRunner

from agent.repair_cli import repair_command, runs_command

SHOP = {
    "shop/__init__.py": "",
    "shop/pricing.py": "def discounted(price, percent):\n    # percent off, e.g. 10 -> 10% off\n"
                       "    return round(price * (1 + percent / 100), 2)\n",
    "shop/cart.py": "from shop.pricing import discounted\n\n\ndef total(items, percent=0):\n"
                    "    return round(sum(discounted(p, percent) * q for p, q in items), 2)\n",
    "tests/test_cart.py": "from shop.cart import total\n\n\ndef test_no_discount():\n"
                          "    assert total([(2.0, 3)]) == 6.0\n\n\ndef test_discount():\n"
                          "    assert total([(10.0, 1), (5.0, 2)], percent=10) == 18.0\n",
    "tests/test_pricing.py": "from shop.pricing import discounted\n\n\ndef test_zero():\n"
                             "    assert discounted(3.0, 0) == 3.0\n\n\ndef test_half():\n"
                             "    assert discounted(8.0, 50) == 4.0\n",
}


def repair(*args: str, cwd: Path = ROOT) -> tuple[int, dict, str]:
    """The command in-process (the console script is exercised by test_resume.py), from `cwd`."""
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(repair_command, [*args, "--json"])
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print one object:\n{result.stdout}\n{result.stderr}"
    return result.exit_code, json.loads(lines[0]), result.stderr


@pytest.mark.slow
def test_function_level_two_bugs_by_hill_climbing(tmp_path):
    write(tmp_path, {"grades.py": GRADES, "test_grades.py": GRADE_TESTS})
    before = tree(tmp_path)
    code, out, err = repair(str(tmp_path / "grades.py"), "--tests", str(tmp_path / "test_grades.py"),
                            "--db", str(tmp_path.parent / "runs.sqlite"))
    assert code == 0, err
    assert set(out) == {"status", "run_id", "iterations", "diff", "tests_passed", "tests_total", "stop_reason",
                        "confirmation", "rejected", "isolation", "notes", "setup"}
    assert out["setup"] == {"python": None, "targets": [], "test_paths": ["test_grades.py"], "env": []}
    assert (out["status"], out["tests_passed"], out["tests_total"]) == ("fixed", 4, 4)
    assert out["confirmation"] == "4 by the plugin-free runner"
    assert out["isolation"]["level"] in ("full", "partial") and out["isolation"]["backend"] == "local"
    assert "-    if score > 90:\n+    if score >= 90:" in out["diff"]
    assert "-    if score > 80:\n+    if score >= 80:" in out["diff"]
    assert out["iterations"] >= 2  # one fix per step: the first one made the best attempt better, not done
    assert tree(tmp_path) == before  # nothing written without --apply


@pytest.mark.slow
def test_project_level_diff_and_apply(tmp_path):
    project = write(tmp_path / "proj", SHOP)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "seeded bug"], cwd=project,
                   check=True)
    before = tree(project)
    db = str(tmp_path / "runs.sqlite")
    code, out, err = repair(str(project), "--db", db)
    assert code == 0 and out["status"] == "fixed", err
    assert out["diff"].startswith("--- a/shop/pricing.py\n+++ b/shop/pricing.py\n")
    assert "+    return round(price * (1 - percent / 100), 2)" in out["diff"]
    assert "# percent off" in out["diff"]  # context lines: the rest of the file is untouched
    assert tree(project) == before
    status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=project, capture_output=True,
                            text=True, check=True)
    assert status.stdout == ""
    code, applied, err = repair(str(project), "--db", db, "--apply")
    assert (code, applied["status"]) == (0, "fixed"), err
    assert "1 - percent / 100" in (project / "shop/pricing.py").read_text()
    assert tree(project)["tests/test_cart.py"] == before["tests/test_cart.py"]


def test_the_example_is_repaired(tmp_path):
    example = shutil.copytree(ROOT / "examples" / "inventory", tmp_path / "inventory")
    code, out, err = repair(str(example), "--db", str(tmp_path / "runs.sqlite"))
    assert (code, out["status"], out["tests_passed"], out["tests_total"]) == (0, "fixed", 5, 5), err
    assert "+    return sorted(item for item, count in stock.items() if count <= threshold)" in out["diff"]


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["missing.py", "--tests", "test_missing.py"], "no such file"),
        ({"m.py": "def f(:\n", "test_m.py": "from m import f\n"}, ["m.py", "--tests", "test_m.py"],
         "m.py does not parse"),
        ({"m.py": "def f():\n    return 1\n", "test_m.py": "from m import f\n\ndef test_f():\n    assert f() == 1\n"},
         ["m.py", "--tests", "test_m.py"], "no failing test"),
        ({"m.py": "def f():\n    return 1\n",
          "test_m.py": "import not_installed_anywhere\nfrom m import f\n\ndef test_f():\n    assert f() == 2\n"},
         ["m.py", "--tests", "test_m.py"], "the tests cannot run"),
        ({"m.py": "x = 1\n"}, ["m.py"], "pass its tests with --tests"),
        ({"m.py": "x = 1\n"}, [".", "--patcher", "model"], "needs a model"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, files, args, message):
    write(tmp_path, files)
    code, out, err = repair(*args, "--db", str(tmp_path / "runs.sqlite"), cwd=tmp_path)
    assert code == 2 and out["status"] == "error"
    assert message in err


@pytest.mark.slow
def test_runs_lists_outcomes(tmp_path):
    write(tmp_path, {"grades.py": GRADES.replace("> 80", ">= 80"), "test_grades.py": GRADE_TESTS})
    db = str(tmp_path / "runs.sqlite")
    _, out, _ = repair(str(tmp_path / "grades.py"), "--tests", str(tmp_path / "test_grades.py"), "--db", db)
    listed = CliRunner().invoke(runs_command, ["--db", db, "--json"])
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (record["run_id"], record["status"], record["tests_passed"]) == (out["run_id"], "fixed", 4)


def test_resuming_an_unknown_run_is_a_clear_error(tmp_path):
    code, out, err = repair("--resume", "nope", "--db", str(tmp_path / "runs.sqlite"))
    assert (code, out["status"]) == (2, "error") and "no run 'nope'" in err
