"""Turns the fork server's evidence into an ExecResult. Pure: nothing the program printed counts."""

from __future__ import annotations

import signal

from sandbox._models import ExecResult, Isolation, Limits, Status

# The kernel enforces RLIMIT_CPU on tick-sampled CPU time, while rusage reports precise run time,
# which on a busy VM comes out up to ~15% lower for a process the limit really stopped.
_CPU_EVIDENCE_FRACTION = 0.75
# Under RLIMIT_AS (no memory cgroup) the kernel leaves no OOM record; a peak this close to the
# limit is the best evidence that the limit, not the program, ended the run.
_RLIMIT_AS_PEAK_FRACTION = 0.9


def limit_that_stopped(evidence: dict[str, object], limits: Limits, memory_by_cgroup: bool) -> Status | None:
    fired = evidence["fired"]
    if fired == "output_limit":
        return Status.output_limit
    if fired == "timeout":
        return Status.timeout
    if int(evidence["oom_kills"]) > 0:  # type: ignore[call-overload]
        return Status.memory
    exit_code = evidence["exit_code"]
    cpu_signal = exit_code in (-signal.SIGXCPU, -signal.SIGKILL)
    if cpu_signal and float(evidence["cpu_s"]) >= _CPU_EVIDENCE_FRACTION * limits.cpu_time_s:  # type: ignore[arg-type]
        return Status.timeout
    peak_bytes = int(evidence["max_rss_kb"]) * 1024  # type: ignore[call-overload]
    if not memory_by_cgroup and exit_code != 0 and peak_bytes >= _RLIMIT_AS_PEAK_FRACTION * limits.memory_mb * 2**20:
        return Status.memory
    return None


def _text(data: bytes, cap: int) -> tuple[str, bool]:
    return data[:cap].decode("utf-8", errors="backslashreplace"), len(data) > cap


def to_result(evidence: dict[str, object], limits: Limits, isolation: Isolation,
              memory_by_cgroup: bool) -> ExecResult:
    stopped_by = limit_that_stopped(evidence, limits, memory_by_cgroup)
    exit_code = evidence["exit_code"]
    if stopped_by is not None:
        status, exit_code = stopped_by, None
    else:
        status = Status.ok if exit_code == 0 else Status.error
    stdout, stdout_truncated = _text(evidence["stdout"], limits.output_bytes)  # type: ignore[arg-type]
    stderr, stderr_truncated = _text(evidence["stderr"], limits.output_bytes)  # type: ignore[arg-type]
    return ExecResult(status=status, exit_code=exit_code, stdout=stdout, stderr=stderr,  # type: ignore[arg-type]
                      stdout_truncated=stdout_truncated, stderr_truncated=stderr_truncated,
                      duration_s=float(evidence["duration_s"]), isolation=isolation,  # type: ignore[arg-type]
                      warm=str(evidence.get("warm", "")))

