"""A hand-assembled classic-BPF seccomp filter (no libseccomp needed).

The filter denies the syscalls a sandboxed program never needs and an escape usually does:
tracing other processes, mounting, namespaces, kernel keyrings and modules, BPF, rebooting.
bubblewrap loads it with ``--seccomp FD``; without bubblewrap the fork server loads it itself.
"""

from __future__ import annotations

import errno
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000

_OFFSET_NR = 0
_OFFSET_ARCH = 4
_OFFSET_ARG0_LOW = 16

# clone() flags that would create namespaces (user namespaces above all: they grant capabilities).
CLONE_NAMESPACE_FLAGS = 0x7E020080

# x86_64 syscall numbers denied with EPERM.
DENIED_SYSCALLS_X86_64: dict[str, int] = {
    "ptrace": 101,
    "syslog": 103,
    "personality": 135,
    "vhangup": 153,
    "pivot_root": 155,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "iopl": 172,
    "ioperm": 173,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "lookup_dcookie": 212,
    "clock_settime": 227,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "clock_adjtime": 305,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
}
_CLONE = 56
# clone3 passes its flags in memory that BPF cannot read; ENOSYS makes libc fall back to clone().
_CLONE3 = 435


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _ret(value: int) -> bytes:
    return _insn(_RET_K, 0, 0, value)


def supported() -> bool:
    """Whether this machine's architecture has a filter here (x86_64 only)."""
    return platform.machine() == "x86_64"


def build_filter() -> bytes:
    """The filter as raw ``struct sock_filter`` records, ready for ``bwrap --seccomp`` or prctl."""
    deny = _ret(_RET_ERRNO | errno.EPERM)
    program = [
        _insn(_LD_W_ABS, 0, 0, _OFFSET_ARCH),
        _insn(_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        _ret(_RET_KILL_PROCESS),
        _insn(_LD_W_ABS, 0, 0, _OFFSET_NR),
        _insn(_JGE_K, 0, 1, X32_SYSCALL_BIT),
        deny,
        _insn(_JEQ_K, 0, 1, _CLONE3),
        _ret(_RET_ERRNO | errno.ENOSYS),
    ]
    for number in sorted(DENIED_SYSCALLS_X86_64.values()):
        program += [_insn(_JEQ_K, 0, 1, number), deny]
    program += [
        _insn(_JEQ_K, 0, 3, _CLONE),
        _insn(_LD_W_ABS, 0, 0, _OFFSET_ARG0_LOW),
        _insn(_JSET_K, 0, 1, CLONE_NAMESPACE_FLAGS),
        deny,
        _ret(_RET_ALLOW),
    ]
    return b"".join(program)
