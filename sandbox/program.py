"""One program run through the job protocol: `run_program(runner, code, stdin=..., files=..., limits=...)`.

For a caller that must show a program's own stdout and stderr (an agent's `run_python` tool) but may run untrusted
code only as a job on its own runner (its pool, on its backend): the program runs as a child of a job program
(sandbox/_program_child.py), which reports its exit code and output through the job's keyed channel.
"""

from __future__ import annotations

import signal
from functools import cache
from pathlib import Path

from sandbox import _program_child
from sandbox._models import ExecResult, Limits, Status
from sandbox.job import Job, JobRunner

MAIN = "main.py"
_START_S = 10.0  # the job's start-up on top of the program's own limit (the outer limit only catches a hang)


def run_program(runner: JobRunner, code: str, *, stdin: bytes = b"", files: dict[str, str] | None = None,
                limits: Limits | None = None) -> ExecResult:
    """Runs `code` as `main.py` (files beside it) with `stdin`, within `limits`, on `runner`: the program's own
    exit code (negative: the signal that killed it; -24 its CPU time ran out, -9 e.g. the memory limit) and output,
    in the job's words where it reported, else the supervisor's."""
    limits = limits or Limits()
    outer = limits.model_copy(update={"wall_time_s": limits.wall_time_s + _START_S,
                                      "cpu_time_s": limits.cpu_time_s + _START_S,
                                      "output_bytes": 2 * limits.output_bytes + 1_000_000})
    job = Job(program=_source(), files={**(files or {}), MAIN: code}, limits=outer,
              data={"main": MAIN, "stdin": stdin, "timeout_s": limits.wall_time_s, "cap": limits.output_bytes})
    result = runner.submit_job(job).result()
    execution = result.execution
    if not result.ok:  # the sandbox itself stopped it (a limit on the whole tree), or the job could not report
        return ExecResult(status=execution.status if execution.status is not Status.ok else Status.error,
                             exit_code=execution.exit_code, stdout="", stderr=result.problem,
                             duration_s=execution.duration_s, isolation=execution.isolation)
    report = result.records[0]
    code_ = report["exit_code"]
    status = Status.timeout if report["timed_out"] or code_ == -signal.SIGXCPU else \
        Status.ok if code_ == 0 else Status.error
    return ExecResult(status=status, exit_code=code_, stdout=report["stdout"], stderr=report["stderr"],
                         stdout_truncated=report["stdout_truncated"], stderr_truncated=report["stderr_truncated"],
                         duration_s=report["duration_s"], isolation=execution.isolation)


@cache
def _source() -> str:
    return Path(_program_child.__file__).read_text(encoding="utf-8")
