"""The public entry points: pick a backend by name, run one program."""

from __future__ import annotations

import atexit
import threading

from sandbox._backend import Backend
from sandbox._defaults import BACKENDS
from sandbox._errors import SandboxError
from sandbox._models import ExecRequest, ExecResult, Limits

_shared: dict[str, Backend] = {}
_shared_lock = threading.Lock()


def backend_named(name: str, python: str | None = None) -> Backend:
    """A new backend instance: "local" (bubblewrap, the default) or "docker".

    `python`: run on this interpreter or venv instead of semcoder's own (a project's environment; local only).
    """
    if name == "local":
        from sandbox._local import LocalBackend

        return LocalBackend(python=python)
    if python is not None:
        raise SandboxError(f"a project's own Python (--python {python}) runs on the local backend only; the "
                           f"{name} backend runs its image's interpreter")
    if name == "docker":
        try:
            from sandbox._docker import DockerBackend
        except ImportError as exc:
            raise SandboxError(f"the docker backend is not available: {exc}") from exc
        return DockerBackend()
    raise ValueError(f"unknown sandbox backend {name!r}; choose one of {', '.join(BACKENDS)}")


def shared_backend(name: str) -> Backend:
    """One backend per name for this process (run() uses it), closed at exit."""
    with _shared_lock:
        if name not in _shared:
            _shared[name] = backend_named(name)
        return _shared[name]


@atexit.register
def _close_shared() -> None:
    with _shared_lock:
        for backend in _shared.values():
            backend.close()
        _shared.clear()


def run(code: str | ExecRequest, *, stdin: bytes | str = b"", files: dict[str, bytes | str] | None = None,
        limits: Limits | None = None, backend: str = "local") -> ExecResult:
    """Runs Python source as ``__main__`` in a fresh sandboxed process and working dir.

    The program failing is data (the result's status); only the sandbox failing raises SandboxError.
    """
    if isinstance(code, ExecRequest):
        request = code if limits is None else code.model_copy(update={"limits": limits})
    else:
        request = ExecRequest(code=code, stdin=stdin.encode() if isinstance(stdin, str) else stdin,
                              files=files or {}, limits=limits or Limits())
    return shared_backend(backend).execute(request)
