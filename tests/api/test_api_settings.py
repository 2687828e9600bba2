"""One setting, one meaning: a repair started over HTTP and one started by `semcoder repair` take the same settings
(test selection, env, python, budgets), run alike, report the same environment and selection, and refuse the same
bad values with the same message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from api_helpers import AUTH, ROOT, read_events, wait_for
from click.testing import CliRunner

from agent.repair_cli import repair_command
from agent.repair_settings import RepairSettings

# test_two is the target; test_env passes only if the tests see X=1; test_broken failed before and is left alone;
# tests/test_other.py is outside the selection (were it run, the total would count it).
PROJECT = {
    "calc.py": "def double(x):\n    return x + x + 1\n",
    "tests/test_calc.py": "import os\n\nfrom calc import double\n\n\ndef test_two():\n    assert double(1) == 2\n\n\n"
                          "def test_env():\n    assert os.environ['X'] == '1'\n\n\n"
                          "def test_broken():\n    assert False, 'broken before and after'\n",
    "tests/test_other.py": "def test_elsewhere():\n    pass\n",
}
TARGET = "tests/test_calc.py::test_two"


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def cli(*args: str, db: Path) -> tuple[int, dict, str]:
    """`semcoder repair ... --json` in-process; its one JSON object."""
    result = CliRunner().invoke(repair_command, ["--db", str(db), "--json", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    [line] = result.stdout.strip().splitlines()
    return result.exit_code, json.loads(line), result.stderr


@pytest.fixture(autouse=True)
def _no_activated_venv(monkeypatch):
    """The command line would take an activated $VIRTUAL_ENV first; the server never does (it is its own)."""
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)


@pytest.fixture(scope="module")
def project(project_root) -> Path:
    """A project with its own .venv (over this interpreter, so pytest is there), under the server's allowed root."""
    root = _write(project_root / "selected", PROJECT)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root / ".venv")],
                   check=True, timeout=300)
    return root


def test_every_setting_is_one_flag_and_one_body_field_with_one_description():
    body = json.loads((ROOT / "docs" / "openapi.json").read_text())["components"]["schemas"]["RepairRequest"]
    parameters = {parameter.name: parameter for parameter in repair_command.params}
    for name, field in RepairSettings.model_fields.items():
        assert body["properties"][name]["description"] == field.description, name
        parameter = parameters[name]
        if isinstance(parameter, click.Option):
            assert field.description in (parameter.help or ""), name
        else:
            assert parameter.nargs == -1 and name == "pytest_args"  # what follows `--`


def test_a_selection_and_env_over_http_run_as_on_the_command_line(server, project, tmp_path):
    with server.client() as client:
        accepted = client.post("/v1/repairs", json={"project_path": str(project), "pytest_args": [TARGET],
                                                    "env": {"X": "1"}}, headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        run = wait_for(client, accepted.json()["id"], {"fixed", "not_fixed", "error"}, timeout_s=180)
        events = read_events(client, run["id"])
    code, out, err = cli(str(project), "--env", "X=1", "--", TARGET, db=tmp_path / "runs.sqlite")

    venv = str(project / ".venv")
    setup = {"python": venv, "targets": [TARGET], "test_paths": ["tests/test_calc.py"], "env": ["X"]}
    # 2 tests: the target and test_env (it passed, so it saw X=1); test_broken left alone, test_other not run.
    assert (run["status"], run["tests_passed"], run["tests_total"]) == ("fixed", 2, 2), run
    assert (code, out["status"], out["tests_passed"], out["tests_total"]) == (0, "fixed", 2, 2), err
    assert run["setup"] == out["setup"] == setup
    assert run["diff"] == out["diff"] and "+    return x + x" in run["diff"]
    assert run["isolation"]["python"] == out["isolation"]["python"] == str(project / ".venv" / "bin" / "python")
    assert run["isolation"]["python_version"] == out["isolation"]["python_version"]
    assert run["isolation"]["level"] == out["isolation"]["level"]
    queued, started = events[0]["data"], events[1]["data"]
    assert queued["environment"]["source"] == ".venv" and queued["config"]["python"] == venv
    assert started["isolation"] == run["isolation"]


@pytest.fixture(scope="module")
def plain(project_root) -> Path:
    """A project without an environment of its own, and a 'venv' whose interpreter is a file in the project."""
    root = _write(project_root / "plain", {"m.py": "def f():\n    return 1\n",
                                           "test_m.py": "from m import f\n\n\ndef test_f():\n    assert f() == 2\n",
                                           "fakevenv/pyvenv.cfg": "home = /usr/bin\n",
                                           "fakevenv/bin/python": "#!/bin/sh\nexit 1\n"})
    os.chmod(root / "fakevenv" / "bin" / "python", 0o755)
    return root


@pytest.mark.parametrize(("body", "args", "said"), [
    ({"env": {"HOME": "/tmp"}}, ["--env", "HOME=/tmp"], "--env HOME: the sandbox sets HOME itself"),
    ({"env": ["X"]}, ["--env", "X"], "--env 'X': expected NAME=VALUE"),
    ({"python": "{root}/no-such-venv"}, ["--python", "{root}/no-such-venv"],
     "not an interpreter or a virtual environment"),
    ({"python": "{root}/fakevenv"}, ["--python", "{root}/fakevenv"], "the venv's interpreter is a file inside"),
    ({"max_iterations": 500}, ["--max-iterations", "500"], "--max-iterations: Input should be less than or equal"),
    ({"max_time_s": "soon"}, ["--max-time", "soon"], "--max-time: Input should be a valid number"),
    ({"patcher": "model"}, ["--patcher", "model"], "--patcher model needs a model"),
    ({"entry_point": "f"}, ["--entry-point", "f"], "--entry-point applies to function-level tasks"),
])
def test_a_bad_setting_is_refused_alike_with_the_same_message(server, plain, tmp_path, body, args, said):
    body = {name: value.format(root=plain) if isinstance(value, str) else value for name, value in body.items()}
    with server.client() as client:
        response = client.post("/v1/repairs", json={"project_path": str(plain), **body}, headers=AUTH)
    code, out, err = cli(str(plain), *(arg.format(root=plain) for arg in args), db=tmp_path / "runs.sqlite")
    assert response.status_code == 422, response.text
    assert (code, out["status"]) == (2, "error")
    assert response.json()["detail"] == out["stop_reason"] and f"Error: {out['stop_reason']}" in err
    assert said in out["stop_reason"], out["stop_reason"]


def test_the_server_runs_only_interpreters_under_its_allowed_roots(server, plain):
    with server.client() as client:
        outside = client.post("/v1/repairs", json={"project_path": str(plain), "python": sys.executable},
                              headers=AUTH)
        relative = client.post("/v1/repairs", json={"project_path": str(plain), "python": ".venv"}, headers=AUTH)
    assert outside.status_code == 403 and "outside the allowed roots" in outside.json()["detail"], outside.text
    assert relative.status_code == 422 and "must be an absolute path" in relative.json()["detail"], relative.text


def test_the_runs_of_an_earlier_server_and_command_line_are_in_the_one_store(tmp_path):
    import sqlite3

    from agent.persistence import open_store

    with sqlite3.connect(tmp_path / "old.sqlite") as old:
        old.execute(
            "CREATE TABLE semcoder_api_runs (run_id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, "
            "updated DOUBLE PRECISION NOT NULL, status TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, "
            "task TEXT NOT NULL, config TEXT NOT NULL, iterations INTEGER NOT NULL DEFAULT 0, executions INTEGER "
            "NOT NULL DEFAULT 0, tests_passed INTEGER NOT NULL DEFAULT 0, tests_total INTEGER NOT NULL DEFAULT 0, "
            "stop_reason TEXT NOT NULL DEFAULT '', diff TEXT NOT NULL DEFAULT '')")
        old.execute("INSERT INTO semcoder_api_runs (run_id, created, updated, status, kind, target, task, "
                    "config) VALUES ('old', 1, 1, 'fixed', 'function', 'solution.py', '{}', '{}')")
        # the command line's own table, before there was one store
        old.execute("CREATE TABLE semcoder_runs (run_id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT "
                    "NULL, target TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL, iterations INTEGER NOT "
                    "NULL DEFAULT 0, tests_passed INTEGER NOT NULL DEFAULT 0, tests_total INTEGER NOT NULL DEFAULT "
                    "0, stop_reason TEXT NOT NULL DEFAULT '')")
        old.execute("INSERT INTO semcoder_runs VALUES ('cli1', 2, 3, '/p', 'project', 'not_fixed', 4, 1, 2, 'budget')")
    for _ in range(2):  # a second start finds the columns there and the old table gone
        with open_store(tmp_path / "old.sqlite") as store:
            rows = {row.run_id: row for row in store.list()}
    assert list(rows) == ["cli1", "old"]
    assert (rows["old"].origin, rows["old"].setup.model_dump(), rows["old"].isolation) == (
        "http", {"python": None, "targets": [], "test_paths": [], "env": []}, {})
    cli = rows["cli1"]
    assert (cli.origin, cli.status, cli.iterations, cli.tests_passed, cli.tests_total, cli.stop_reason) == (
        "cli", "not_fixed", 4, 1, 2, "budget")
