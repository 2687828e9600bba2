"""`semcoder sandbox run FILE` prints one JSON object and exits 0 whenever the sandbox did its job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from sandbox.cli import sandbox_group

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"status", "exit_code", "stdout", "stderr", "duration_s", "isolation", "isolation_detail"}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(sandbox_group, ["run", *args])
    return result.exit_code, result.output


def test_the_console_script_runs_the_example() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", "from agent.cli import main; main()", "sandbox", "run", str(ROOT / "examples/hello.py")],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert set(payload) == KEYS
    assert (payload["status"], payload["exit_code"], payload["stdout"]) == ("ok", 0, "hello, world\n")


def test_stdin_file_and_a_failing_program_still_exit_zero(tmp_path: Path) -> None:
    program = tmp_path / "fail.py"
    program.write_text("import sys\nprint(input())\nsys.exit(5)\n")
    stdin = tmp_path / "in.txt"
    stdin.write_text("from a file\n")
    code, output = invoke(str(program), "--stdin", str(stdin))
    assert code == 0
    payload = json.loads(output)
    assert (payload["status"], payload["exit_code"], payload["stdout"]) == ("error", 5, "from a file\n")


def test_timeout_and_memory_options_are_enforced(tmp_path: Path) -> None:
    sleeper = tmp_path / "sleep.py"
    sleeper.write_text("import time\ntime.sleep(30)\n")
    hog = tmp_path / "hog.py"
    hog.write_text("x = bytearray(300 * 1024 * 1024)\n")
    assert json.loads(invoke(str(sleeper), "--timeout", "1")[1])["status"] == "timeout"
    assert json.loads(invoke(str(hog), "--memory-mb", "64")[1])["status"] == "memory"


def test_bad_arguments_fail_with_a_message(tmp_path: Path) -> None:
    code, output = invoke(str(tmp_path / "missing.py"))
    assert code == 2 and "does not exist" in output
    code, output = invoke(str(ROOT / "examples/hello.py"), "--backend", "vm")
    assert code == 2 and "'vm' is not one of" in output
