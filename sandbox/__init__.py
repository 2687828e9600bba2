"""Run untrusted Python in isolation and get the supervisor's own account of what happened.

    >>> import sandbox
    >>> sandbox.run("print('hi')").stdout
    'hi\\n'

Backends: "local" (bubblewrap namespaces, cgroups, seccomp, a dedicated uid; the default) and
"docker". ``Pool`` keeps warm sandboxed workers for many runs. See sandbox/README.md.
"""

from sandbox._api import BACKENDS, backend_named, run
from sandbox._backend import Backend
from sandbox._host import isolation_report, project_python
from sandbox._models import RESERVED_ENV, ExecRequest, ExecResult, Isolation, Limits, SandboxError, Status
from sandbox._pool import Pool
from sandbox.job import Job, JobResult, JobRunner, run_job
from sandbox.program import run_program

__all__ = [
    "BACKENDS",
    "RESERVED_ENV",
    "Backend",
    "ExecRequest",
    "ExecResult",
    "Isolation",
    "Job",
    "JobResult",
    "JobRunner",
    "Limits",
    "Pool",
    "SandboxError",
    "Status",
    "backend_named",
    "isolation_report",
    "project_python",
    "run",
    "run_job",
    "run_program",
]
