"""Make the supervisor a child subreaper and reap the bubblewrap processes that come back to it.

Without this, each ``bwrap --unshare-pid`` can leave a zombie that PID 1 reaps slowly and that
counts against process limits. Only zombies named ``bwrap`` that no Popen object owns are reaped,
so other code in this process keeps its own children.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36
_lock = threading.Lock()
_enabled = False
# Hold spawn_lock from Popen() until its pid is in owned_pids, so reap_strays never takes it.
spawn_lock = threading.Lock()
owned_pids: set[int] = set()


def enable_subreaper() -> None:
    global _enabled
    with _lock:
        if _enabled:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
        _enabled = True


def _children() -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            pids.extend(int(pid) for pid in (task / "children").read_text().split())
    return pids


def _is_bwrap_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    state = stat[stat.rindex(")") + 2 :].split(" ", 1)[0]
    return name == "bwrap" and state == "Z"


def reap_strays() -> int:
    """Reaps orphaned bwrap zombies; returns how many."""
    with spawn_lock:
        return _reap_unowned()


def _reap_unowned() -> int:
    reaped = 0
    for pid in _children():
        if pid in owned_pids or not _is_bwrap_zombie(pid):
            continue
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                reaped += 1
    return reaped
