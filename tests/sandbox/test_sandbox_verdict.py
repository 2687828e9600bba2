"""Pure parts: how evidence becomes a status, and the seccomp filter's shape."""

from __future__ import annotations

import signal
import struct

from sandbox import Limits, Status
from sandbox._seccomp import DENIED_SYSCALLS_X86_64, build_filter
from sandbox._verdict import to_result

LIMITS = Limits(cpu_time_s=2, memory_mb=100, output_bytes=10)


def evidence(**overrides: object) -> dict[str, object]:
    base = {"fired": None, "exit_code": 0, "cpu_s": 0.01, "max_rss_kb": 10_000, "oom_kills": 0,
            "duration_s": 0.1, "stdout": b"out", "stderr": b""}
    return {**base, **overrides}


def status_of(memory_by_cgroup: bool = True, **overrides: object) -> tuple[Status, int | None]:
    result = to_result(evidence(**overrides), LIMITS, "full", memory_by_cgroup)
    return result.status, result.exit_code


def test_exit_codes_map_to_ok_and_error() -> None:
    assert status_of() == (Status.ok, 0)
    assert status_of(exit_code=3) == (Status.error, 3)
    assert status_of(exit_code=-signal.SIGSEGV) == (Status.error, -signal.SIGSEGV)


def test_limits_win_and_hide_the_exit_code() -> None:
    assert status_of(fired="timeout", exit_code=-9) == (Status.timeout, None)
    assert status_of(fired="output_limit", exit_code=0) == (Status.output_limit, None)
    assert status_of(oom_kills=1, exit_code=-9) == (Status.memory, None)
    assert status_of(exit_code=-signal.SIGXCPU, cpu_s=2.0) == (Status.timeout, None)


def test_a_self_sent_cpu_signal_is_not_a_cpu_timeout() -> None:
    assert status_of(exit_code=-signal.SIGXCPU, cpu_s=0.1) == (Status.error, -signal.SIGXCPU)
    assert status_of(exit_code=-signal.SIGKILL, cpu_s=0.1) == (Status.error, -signal.SIGKILL)


def test_rlimit_memory_evidence_is_the_peak_only_without_cgroups() -> None:
    near_limit = 95 * 1024
    assert status_of(memory_by_cgroup=False, exit_code=1, max_rss_kb=near_limit) == (Status.memory, None)
    assert status_of(memory_by_cgroup=True, exit_code=1, max_rss_kb=near_limit) == (Status.error, 1)


def test_output_is_cut_at_the_cap_and_bytes_are_never_lost_silently() -> None:
    result = to_result(evidence(stdout=b"0123456789abc", stderr=b"\xff"), LIMITS, "full", True)
    assert (result.stdout, result.stdout_truncated) == ("0123456789", True)
    assert result.stderr == "\\xff"


def test_the_seccomp_filter_checks_the_arch_and_denies_each_syscall() -> None:
    program = build_filter()
    instructions = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    assert instructions[1][3] == 0xC000003E  # AUDIT_ARCH_X86_64
    compared = {k for code, _, _, k in instructions if code == 0x15}
    assert set(DENIED_SYSCALLS_X86_64.values()) <= compared
    assert instructions[-1] == (0x06, 0, 0, 0x7FFF0000)  # everything else is allowed
