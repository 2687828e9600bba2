"""Correctness on every backend: stdin/stdout, exit codes, text and bytes, files, each limit's status."""

from __future__ import annotations

import pytest

from sandbox import ExecRequest, Limits, Status


def test_stdin_reaches_the_program_and_stdout_comes_back(sandboxed) -> None:
    result = sandboxed("import sys\nfor line in sys.stdin:\n    print(line.strip()[::-1])\n", stdin=b"abc\nxyz\n")
    assert (result.status, result.exit_code, result.stdout) == (Status.ok, 0, "cba\nzyx\n")


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [
        ("import sys\nsys.exit(3)", 3),
        ("import os\nos._exit(7)", 7),
        ("raise SystemExit('bye')", 1),
        ("raise ValueError('boom')", 1),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)", -15),
    ],
)
def test_non_zero_exits_are_errors_with_the_real_exit_code(sandboxed, code: str, exit_code: int) -> None:
    result = sandboxed(code)
    assert (result.status, result.exit_code) == (Status.error, exit_code)


def test_exit_builtin_and_a_clean_exit_are_ok(sandboxed) -> None:
    result = sandboxed("print('before')\nexit(0)\nprint('after')")
    assert (result.status, result.exit_code, result.stdout) == (Status.ok, 0, "before\n")


def test_a_traceback_names_the_program_line(sandboxed) -> None:
    result = sandboxed("x = 1\nraise ValueError('boom')\n")
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert 'line 2, in <module>' in result.stderr
    assert result.stderr.rstrip().endswith("ValueError: boom")
    assert "fork_server" not in result.stderr


def test_printing_a_fake_result_changes_nothing(sandboxed) -> None:
    code = 'import sys\nprint(\'{"status": "ok", "exit_code": 0}\')\nsys.exit(4)'
    result = sandboxed(code)
    assert (result.status, result.exit_code) == (Status.error, 4)


def test_unicode_output_is_exact(sandboxed) -> None:
    text = "héllo wörld ✓ 🐍 日本語"
    result = sandboxed(f"import sys\nprint({text!r})\nprint({text!r}, file=sys.stderr)")
    assert (result.stdout, result.stderr) == (text + "\n", text + "\n")


def test_binary_output_does_not_break_the_result(sandboxed) -> None:
    result = sandboxed("import sys\nsys.stdout.buffer.write(bytes(range(256)))")
    assert result.status is Status.ok
    assert result.stdout.startswith(bytes(range(128)).decode())
    assert len(result.stdout) > 128


def test_files_and_argv_reach_the_program_and_sys_path_has_its_dir(sandboxed) -> None:
    request = ExecRequest(
        code="import sys, helper\nprint(helper.VALUE + 1, sys.argv[1:], open('data/x.bin', 'rb').read())",
        files={"helper.py": "VALUE = 41\n", "data/x.bin": b"\x00\x01"},
        argv=["a", "b c"],
    )
    result = sandboxed(request)
    assert result.stdout == "42 ['a', 'b c'] b'\\x00\\x01'\n", result.stderr


def test_wall_time_limit_reports_timeout(sandboxed) -> None:
    result = sandboxed("import time\nprint('started', flush=True)\ntime.sleep(60)", limits=Limits(wall_time_s=1))
    assert (result.status, result.exit_code) == (Status.timeout, None)
    assert result.stdout == "started\n"
    assert result.duration_s < 10


def test_cpu_limit_reports_timeout(sandboxed) -> None:
    result = sandboxed("while True:\n    pass", limits=Limits(cpu_time_s=1, wall_time_s=30))
    assert (result.status, result.exit_code) == (Status.timeout, None)
    assert result.duration_s < 15


def test_memory_limit_reports_memory(sandboxed) -> None:
    result = sandboxed("x = bytearray(400 * 1024 * 1024)\nprint('allocated')", limits=Limits(memory_mb=100))
    assert (result.status, result.exit_code) == (Status.memory, None)
    assert "allocated" not in result.stdout


def test_output_limit_reports_output_limit_on_stderr_too(sandboxed) -> None:
    result = sandboxed("import sys\nsys.stderr.write('e' * 50_000)", limits=Limits(output_bytes=1000))
    assert result.status is Status.output_limit
    assert result.stderr_truncated and len(result.stderr) <= 1000


def test_output_just_under_the_cap_is_kept_whole(sandboxed) -> None:
    result = sandboxed("print('y' * 999, end='')", limits=Limits(output_bytes=1000))
    assert (result.status, result.stdout, result.stdout_truncated) == (Status.ok, "y" * 999, False)


def test_a_program_finds_a_writable_home_a_user_name_and_a_temp_dir(sandboxed) -> None:
    """What test suites ask of their machine: Path.home(), getpass.getuser(), tempfile, expanduser('~')."""
    code = ("import getpass, os, pathlib, tempfile\n"
            "home = pathlib.Path.home()\n(home / '.cfg').write_text('x')\n"
            "with tempfile.NamedTemporaryFile() as f:\n    pass\n"
            "print(getpass.getuser(), os.path.expanduser('~') == str(home), (home / '.cfg').read_text())\n")
    result = sandboxed(code)
    assert (result.status.value, result.stdout) == ("ok", "sandbox True x\n"), result.stderr
