"""Per-worker v1 cgroups (memory and pids), nested under the supervisor's own cgroups.

Nesting under our own cgroup keeps any limit the host already put on us in force. The fork
server, bound to these directories inside the sandbox, moves each job child into them and sets
the job's limits; the worker slot's cgroups hold nothing but the current job.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids")
_counter = itertools.count()


def own_cgroup_dir(controller: str) -> Path | None:
    """This process's v1 cgroup directory for controller, or None if there is none mounted."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            directory = CGROUP_ROOT / controller / path.lstrip("/")
            return directory if directory.is_dir() else None
    return None


def writable_bases() -> dict[str, Path] | None:
    """Base directories for both controllers if we may create cgroups there, else None."""
    bases = {}
    for controller in CONTROLLERS:
        base = own_cgroup_dir(controller)
        if base is None:
            return None
        probe = base / f"semcoder-probe-{os.getpid()}-{next(_counter)}"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError:
            return None
        bases[controller] = base
        _remove_stale(base)
    return bases


def _remove_stale(base: Path) -> None:
    """Removes (empty) slots left by supervisors that died without closing their workers."""
    for directory in base.glob("semcoder-sandbox-*-*"):
        owner = directory.name.split("-")[2]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(OSError):
                for job in JOB_CGROUPS:
                    if (directory / job).exists():
                        (directory / job).rmdir()
                directory.rmdir()


JOB_CGROUPS = ("job0", "job1")


class CgroupSlot:
    """One worker's memory and pids cgroups, each with two job cgroups that its jobs use in turn."""

    def __init__(self, bases: dict[str, Path]) -> None:
        name = f"semcoder-sandbox-{os.getpid()}-{next(_counter)}"
        self.dirs = {controller: base / name for controller, base in bases.items()}
        for directory in self.dirs.values():
            directory.mkdir()
            for job in JOB_CGROUPS:
                (directory / job).mkdir()

    def remove(self) -> None:
        for directory in self.dirs.values():
            for job in JOB_CGROUPS:
                self._remove_dir(directory / job)
            self._remove_dir(directory)

    def _remove_dir(self, directory: Path) -> None:
        """rmdir fails while killed tasks are still exiting, so retry briefly."""
        for _ in range(200):
            try:
                directory.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                with contextlib.suppress(OSError):
                    self._kill_tasks(directory)
                time.sleep(0.005)

    @staticmethod
    def _kill_tasks(directory: Path) -> None:
        for pid in (directory / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
