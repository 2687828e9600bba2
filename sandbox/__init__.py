"""Run untrusted Python in isolation and get the supervisor's own account of what happened.

    >>> import sandbox
    >>> sandbox.run("print('hi')").stdout
    'hi\\n'

Backends: "local" (bubblewrap namespaces, cgroups, seccomp, a dedicated uid; the default) and
"docker". ``Pool`` keeps warm sandboxed workers for many runs. See sandbox/README.md.

Importing this package (or one of its modules) is cheap: every name loads its module on first use, so that a
command can start a sandbox (``start_early``) before it imports pydantic and the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# name -> the module that defines it (the one table: `__getattr__` and `__all__` read it)
_EXPORTS = {
    "BACKENDS": "sandbox._api",
    "backend_named": "sandbox._api",
    "run": "sandbox._api",
    "Backend": "sandbox._backend",
    "start_early": "sandbox._early",
    "SandboxError": "sandbox._errors",
    "isolation_report": "sandbox._host",
    "project_python": "sandbox._host",
    "RESERVED_ENV": "sandbox._models",
    "ExecRequest": "sandbox._models",
    "ExecResult": "sandbox._models",
    "Isolation": "sandbox._models",
    "Limits": "sandbox._models",
    "Status": "sandbox._models",
    "Pool": "sandbox._pool",
    "Job": "sandbox.job",
    "JobResult": "sandbox.job",
    "JobRunner": "sandbox.job",
    "run_job": "sandbox.job",
    "run_program": "sandbox.program",
}

if TYPE_CHECKING:  # what the table says, for type checkers and editors
    from sandbox._api import BACKENDS as BACKENDS
    from sandbox._api import backend_named as backend_named
    from sandbox._api import run as run
    from sandbox._backend import Backend as Backend
    from sandbox._early import start_early as start_early
    from sandbox._errors import SandboxError as SandboxError
    from sandbox._host import isolation_report as isolation_report
    from sandbox._host import project_python as project_python
    from sandbox._models import RESERVED_ENV as RESERVED_ENV
    from sandbox._models import ExecRequest as ExecRequest
    from sandbox._models import ExecResult as ExecResult
    from sandbox._models import Isolation as Isolation
    from sandbox._models import Limits as Limits
    from sandbox._models import Status as Status
    from sandbox._pool import Pool as Pool
    from sandbox.job import Job as Job
    from sandbox.job import JobResult as JobResult
    from sandbox.job import JobRunner as JobRunner
    from sandbox.job import run_job as run_job
    from sandbox.program import run_program as run_program


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


__all__ = sorted(_EXPORTS)
