"""A cold sandbox started before its run is known, so that its start-up overlaps the caller's own.

A command that runs one program pays, one after the other, for its imports (pydantic alone is tens of ms), for
reading its input, and then for the sandbox's start: bubblewrap's namespaces and mounts, the interpreter inside,
the fork server, and its child's move into the run's cgroups (on cgroup v1 the first move after a pause waits for
an RCU grace period, 5-20 ms on a VM). `start_early()`, called first, starts that sandbox and returns; the next
local run whose request fits it (the default working dir, no project tree) runs in it. One that does not fit
starts its own as before, and an early sandbox no run took is closed at exit.

The sandbox starts on what the probe will find if the first bwrap it tries works (_host.assumed); the probe itself
(a bwrap run of its own) runs meanwhile in a thread, and a run takes the sandbox only where the probe found the
same. The sandbox is started on the caller's thread: bwrap's --die-with-parent follows the thread that started it.

This module and what it imports need no pydantic, so that a command can call it before its other imports.
"""

from __future__ import annotations

import atexit
import contextlib
import threading

from sandbox import _host
from sandbox._defaults import FILE_SIZE_MB
from sandbox._worker import LocalWorker

_lock = threading.Lock()
_spare: LocalWorker | None = None
_probing: threading.Thread | None = None


def start_early() -> None:
    """Start the sandbox that the next `sandbox.run` on the local backend will use, and return while it starts.

    For a program about to make one cold run (a command line tool): call it before the imports and the work that
    come before the run, on the thread that will outlive the run (the main one). Nothing changes for the run: the
    sandbox is the one it would start; a run with a project tree or other file limits starts its own. Does
    nothing if one is waiting. A failure to start is not raised here: the run meets it (or a working fallback).
    """
    global _spare, _probing
    with _lock:
        if _spare is not None:
            return
        try:
            _spare = LocalWorker(_host.assumed(), FILE_SIZE_MB, None, one_job=True)
        except Exception:  # not raised here (see the docstring): the run starts its own and meets it
            return
        # The local backend's probe, with its arguments as LocalBackend passes them (one cache entry, one probe).
        _probing = threading.Thread(target=_probe_quietly, name="sandbox-probe", daemon=True)
        _probing.start()


def _probe_quietly() -> None:
    with contextlib.suppress(Exception):  # the run probes again, and raises it there
        _host.probe(True, True, None)


def take(support: _host.HostSupport, workdir_mb: int, tree: str | None) -> LocalWorker | None:
    """The early sandbox, for a cold run on `support` with this working dir and tree, if it fits, else None."""
    global _spare
    if tree is not None or workdir_mb != FILE_SIZE_MB:
        return None
    with _lock:
        worker, probing = _spare, _probing
        if worker is None:
            return None
        if probing is not None:
            probing.join()  # done: the run's backend was built on its result
        _spare = None
    if worker.support != support or not worker.alive:  # not what the probe found, or killed meanwhile
        worker.close()
        return None
    return worker


@atexit.register
def _close() -> None:
    global _spare
    with _lock:
        worker, _spare = _spare, None
    if worker is not None:
        worker.close()
