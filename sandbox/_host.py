"""What this host offers for isolation, probed once; anything missing means `partial`, warned once."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sandbox import _cgroups, _seccomp


class HostSupport(BaseModel):
    """The isolation mechanisms available here; `missing` names what is not."""

    model_config = ConfigDict(frozen=True)

    bwrap: str | None
    cgroup_bases: dict[str, Path] | None
    dedicated_uid: bool
    seccomp: bool
    python: str
    python_prefix: str
    venv_prefix: str | None = None  # the host's venv, bound read-only too: its site-packages holds pytest
    missing: tuple[str, ...]

    @property
    def isolation(self) -> str:
        return "partial" if self.missing else "full"


def _python() -> tuple[str, str]:
    """The real interpreter (not a venv shim) and the prefix to bind read-only."""
    prefix = sys.base_prefix
    candidate = Path(prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    executable = str(candidate) if candidate.exists() else os.path.realpath(sys.executable)
    return executable, prefix


def _bwrap_works(bwrap: str) -> bool:
    probe = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--as-pid-1",
             "--ro-bind", "/", "/", "--", "/bin/true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _world_readable(path: str) -> bool:
    return all(os.stat(p).st_mode & 0o005 == 0o005 for p in [path, *map(str, Path(path).parents)])


@functools.cache
def probe(use_bwrap: bool = True, use_cgroups: bool = True) -> HostSupport:
    python, prefix = _python()
    bwrap = shutil.which("bwrap") if use_bwrap else None
    if bwrap and not _bwrap_works(bwrap):
        bwrap = None
    bases = _cgroups.writable_bases() if use_cgroups else None
    # Without bwrap the job sees the host's paths, so its uid must be able to reach the interpreter.
    dedicated_uid = os.geteuid() == 0 and (bwrap is not None or _world_readable(prefix))
    missing = [
        *([] if bwrap else ["bubblewrap namespaces"]),
        *([] if bases else ["writable v1 memory/pids cgroups"]),
        *([] if dedicated_uid else ["a dedicated uid (needs root, and bwrap or a world-readable Python)"]),
        *([] if _seccomp.supported() else ["seccomp filter (x86_64 only)"]),
    ]
    support = HostSupport(bwrap=bwrap, cgroup_bases=bases, dedicated_uid=dedicated_uid,
                          seccomp=_seccomp.supported(), python=python, python_prefix=prefix,
                          venv_prefix=sys.prefix if sys.prefix != sys.base_prefix else None,
                          missing=tuple(missing))
    if missing:
        warnings.warn(f"sandbox: isolation is PARTIAL here; missing: {', '.join(missing)}",
                      RuntimeWarning, stacklevel=3)
    return support
