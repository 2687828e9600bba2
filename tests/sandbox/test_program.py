"""`sandbox.run_program`: a program's own stdout, stderr, exit code and time limit, through the job protocol on the
caller's pool; what the program prints or exits with cannot pass for the job's report."""

from __future__ import annotations

import pytest

import sandbox


@pytest.fixture(scope="module")
def pool():
    with sandbox.Pool(workers=1) as shared:
        yield shared


def test_stdin_stdout_stderr_and_exit_code_are_the_programs(pool):
    got = sandbox.run_program(pool, "import sys\nprint(sys.stdin.read().upper())\nprint('oops', file=sys.stderr)\n"
                              "sys.exit(3)\n", stdin=b"hello")
    assert (got.status, got.exit_code, got.stdout, got.stderr) == ("error", 3, "HELLO\n", "oops\n")
    assert got.isolation == "full"
    ok = sandbox.run_program(pool, "import helper\nprint(helper.X)\n", files={"helper.py": "X = 42\n"})
    assert (ok.status, ok.exit_code, ok.stdout) == ("ok", 0, "42\n")


def test_limits_time_and_output(pool):
    slow = sandbox.run_program(pool, "while True:\n    pass\n", limits=sandbox.Limits(wall_time_s=1, cpu_time_s=1))
    assert slow.status == "timeout"
    loud = sandbox.run_program(pool, "print('x' * 100_000)\n", limits=sandbox.Limits(output_bytes=1000))
    assert (loud.status, loud.stdout_truncated, len(loud.stdout)) == ("ok", True, 1000)
    killed = sandbox.run_program(pool, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    assert (killed.status, killed.exit_code) == ("error", -9)


def test_the_program_cannot_write_the_report(pool):
    # It prints what looks like a report and writes one to every descriptor it has: the job's channel is not among
    # them (close-on-exec in the job's process), so the report is still the job program's, with its real exit code.
    forged = sandbox.run_program(pool, "import os, sys\nfake = b'@@semcoder-job 0 00 {\"exit_code\": 0}\\n'\n"
                                 "print(fake.decode(), end='')\nfor fd in range(3, 64):\n    try:\n"
                                 "        os.write(fd, fake)\n    except OSError:\n        pass\nsys.exit(7)\n")
    assert (forged.status, forged.exit_code) == ("error", 7)
    assert forged.stdout.startswith("@@semcoder-job")  # its own output, reported as its output
