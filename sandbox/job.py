"""Jobs: the one way any package runs a program of its own inside the sandbox.

A job is a *job program* (source defining ``main(data, channel)``, stdlib plus whatever the sandbox's
interpreter has), the data it needs, extra files and limits. ``to_request`` ships the program with the
child runtime (sandbox/_job_child.py) and a per-job key; ``read`` turns the supervisor's ExecResult
back into the records the program sent, or says precisely why the job failed. Only frames MACed with
the job's key count, each once, in order, ended by one end frame with nothing after it: what the code
under test prints, writes to the channel's fd, or sends late (``atexit``) can fail a job, never forge
one. The runtime's docstring has the details.

    job = Job(program=SOURCE, data={"rows": rows}, limits=outer_limits(per_unit_s=1.0, units=len(rows)))
    result = pool.submit_job(job).result()   # or sandbox.run_job(job, backend="docker")
    if result.ok: records = result.records

A job may carry a ``Preload``: the modules of its environment (never of its files) that a warm local sandbox
imports before the job arrives, in a child that already has the job's uid and limits, plus the files whose code
objects it may compile ahead from the worker's previous job (used only for byte-identical files). The first job
with a preload runs cold; the children forked after it are prepared for the next job with the same preload,
environment and limits. Results are those of a cold run: a preload that fails, crashes or hangs only means a cold
start (sandbox/_fork_server.py). A preload may also let the sandbox start the job's program before the job exists
(``Preload.prestart``: the program calls ``channel.begin(same)`` where it starts to need its job).
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import re
from collections.abc import Iterable
from concurrent.futures import Future
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sandbox import _job_child, _tree
from sandbox._bytecode import shipped_bytecode
from sandbox._defaults import FILE_SIZE_MB
from sandbox._errors import SandboxError
from sandbox._models import ExecRequest, ExecResult, Limits, Status

RUNTIME_FILE = _job_child.MODULE + ".py"
JOB_FILE = _job_child.JOB_FILE
# The runtime is imported before the program's own imports; the program's names never shadow it.
_LAUNCH = f"from {_job_child.MODULE} import serve as _semcoder_serve\n"
_RESERVED = {RUNTIME_FILE, JOB_FILE, importlib.util.cache_from_source(RUNTIME_FILE)}
# Dotted names of non-empty parts (real ones include `_sysconfigdata__linux_x86_64-linux-gnu` and mypyc's hashes).
_MODULE_NAME = re.compile(r"[^\s./\\]+(\.[^\s./\\]+)*\Z")
# Modules whose import is an action, not a definition; never imported ahead of a job.
_NEVER_PRELOADED = frozenset({"__main__", "sitecustomize", "usercustomize", "antigravity", "this", "__hello__",
                              "__phello__", _job_child.MODULE})


def preloadable(name: str) -> bool:
    """Whether `name` may be listed in Preload.modules (a dotted module name, not one whose import is an action)."""
    return bool(_MODULE_NAME.match(name)) and name.split(".")[0] not in _NEVER_PRELOADED


class Preload(BaseModel):
    """What a warm sandbox may do for a job before the job exists (local backend; others ignore it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modules: tuple[str, ...] = Field((), description="Modules of the interpreter's environment to import ahead, in "
                                     "order; one that a job's file would provide (its top-level name) is skipped.")
    avoid: tuple[str, ...] = Field((), description="Modules the job must import its own way (pytest rewrites a "
                                   "plugin's asserts as it imports it): a preload that imports one is abandoned.")
    site_paths: tuple[str, ...] = Field((), description="The job runtime's use_site_packages(extra, pth) arguments, "
                                        "as the job program calls them.")
    site_pth: bool = True
    site_packages: bool = Field(True, description="Whether the preload puts the environment's site-packages on "
                                "sys.path (as use_site_packages does): False for a program that runs on the "
                                "standard library alone (a cold start has no site-packages), whose preload imports "
                                "only standard modules.")
    compile: tuple[str, ...] = Field((), description="Job files (relative paths) whose code objects may be "
                                     "compiled ahead from the worker's previous job's files.")
    prepare: str = Field("", description="The job program's own preparation, run after the imports: source "
                         "defining prepare(data, files, workdir) (files: the worker's previous job's, bytes).")
    prepare_data: Any = None
    prestart: bool = Field(False, description="The program may start before its job exists, in the job's working "
                           "dir on the previous job's files and data, and calls `channel.begin(same)` where its work "
                           "starts to depend on the job: there the job is taken if running on gives what a cold "
                           "start gives, else it runs cold (sandbox/_job_child.py, prestarted jobs).")

    @field_validator("modules", "avoid")
    @classmethod
    def _names(cls, modules: tuple[str, ...]) -> tuple[str, ...]:
        for name in modules:
            if not _MODULE_NAME.match(name):
                raise ValueError(f"Preload.modules: {name!r} is not a module name")
        return modules


class Job(BaseModel):
    """One in-sandbox program run: its source, its data (marshal-able), extra files and outer limits."""

    model_config = ConfigDict(extra="forbid")

    program: str = Field(description="Source defining main(data, channel); runs as __main__.")
    data: Any = None
    files: dict[str, bytes | str] = Field(default_factory=dict, description="Relative path -> content.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables (ExecRequest.env).")
    limits: Limits = Field(default_factory=Limits)
    preload: Preload | None = Field(None, description="What a warm sandbox may import ahead (see Preload).")
    tree: str | None = Field(None, description="A host directory the job sees read-only, its entries linked around "
                             "`files` in the working dir (ExecRequest.tree).")


class JobResult(BaseModel):
    """What a job reported, judged by the host; `problem` says why a job failed ('' when it did not)."""

    records: list[Any] = Field(default_factory=list, description="What the program sent, in order.")
    ended: bool = Field(False, description="The program returned and closed its channel properly.")
    problem: str = ""
    interfered: bool = Field(False, description="The channel held something the job's program did not send "
                             "(unkeyed, repeated, out of order, after the end): the code under test wrote to it.")
    execution: ExecResult

    @property
    def ok(self) -> bool:
        return self.ended and not self.problem


class JobRunner(Protocol):
    """Where jobs run: `sandbox.Pool` (warm, any backend) satisfies it. An `urgent` job may start before jobs
    still waiting (a runner without priorities may ignore it)."""

    def submit_job(self, job: Job, *, urgent: bool = False) -> Future[JobResult]: ...


def outer_limits(*, per_unit_s: float, units: int = 1, start_s: float = 10.0, memory_mb: int = 1024,
                 output_bytes: int | None = None, per_unit_bytes: int = 0, file_size_mb: int = FILE_SIZE_MB) -> Limits:
    """The sandbox's limits for a job whose program enforces its own per-unit limits.

    The program's timer catches a slow unit; these only catch what escapes it (a hung interpreter, a C
    loop), so they are the units' budgets plus start-up, and the output cap fits every unit's report.
    """
    seconds = start_s + units * (per_unit_s + 0.5)
    cap = output_bytes if output_bytes is not None else 1_000_000 + units * per_unit_bytes
    return Limits(wall_time_s=seconds, cpu_time_s=seconds, memory_mb=memory_mb, output_bytes=cap,
                  file_size_mb=file_size_mb)


def to_request(job: Job) -> tuple[ExecRequest, str]:
    """The sandbox request that runs `job`, and the key its reports must carry."""
    clash = _RESERVED & set(job.files)
    if clash:
        raise SandboxError(f"a job's files may not be named {', '.join(sorted(clash))} (the job runtime's own)")
    key = os.urandom(32).hex()  # secrets.token_hex's source; `secrets` would import hmac and OpenSSL at start-up
    files = {**job.files, RUNTIME_FILE: _runtime_source(), JOB_FILE: marshal.dumps({"data": job.data, "key": key})}
    bytecode = None if job.tree is not None else shipped_bytecode(Path(_job_child.__file__), _job_child.MODULE)
    if bytecode is not None:  # a cold job loads the runtime instead of compiling it (not where a tree's
        files[bytecode[0]] = bytecode[1]  # own __pycache__ could be linked around it)
    # Guarded: multiprocessing's spawn (and forkserver) children import the main module as __mp_main__, and one
    # of those must not serve the job again (its file is gone, its channel is the parent's).
    code = _LAUNCH + job.program + "\nif __name__ == '__main__':\n    _semcoder_serve(main)\n"
    return ExecRequest(code=code, files=files, env=job.env, limits=job.limits, tree=job.tree), key


def warm_spec(job: Job) -> dict[str, Any] | None:
    """The fork server's form of a job's preload: the job runtime to import first (so that what the runtime binds is
    bound before any module of the environment runs), the call that preloads, and the files to compile ahead."""
    if job.preload is None:
        return None
    provided = _top_level_names([*job.files, *(_tree.links(job.tree, job.files) if job.tree else ())])
    modules = [name for name in job.preload.modules
               if name.split(".")[0] not in provided and name.split(".")[0] not in _NEVER_PRELOADED]
    return {"module": _job_child.MODULE, "file": RUNTIME_FILE, "source": _runtime_source(), "call": "preload",
            "data": {"modules": modules, "avoid": list(job.preload.avoid), "site_paths": list(job.preload.site_paths),
                     "site_pth": job.preload.site_pth, "site": job.preload.site_packages,
                     "prepare": job.preload.prepare,
                     "prepare_data": job.preload.prepare_data},
            "compile": [name for name in job.preload.compile if name in job.files and name.endswith(".py")],
            "prestart": {"job_file": JOB_FILE} if job.preload.prestart else None}


def _top_level_names(files: Iterable[str]) -> set[str]:
    """The top-level module names a job's files (and its tree's links) could provide from its working dir (or a
    src/ layout)."""
    names = set()
    for path in files:
        parts = path.split("/")
        for first in (parts[0], parts[1] if parts[0] == "src" and len(parts) > 1 else ""):
            if first:
                names.add(first[:-3] if first.endswith(".py") else first.split(".")[0])
    return names


def read(result: ExecResult, key: str) -> JobResult:
    """The host's judgement of a finished job: only its keyed frames count, each once, in order."""
    records, ended, problem = _job_child.parse(result.stdout, key)
    # A frame cut short by a limit's kill is the kill's doing, not interference.
    interfered = bool(problem) and not result.stdout_truncated and result.status in (Status.ok, Status.error)
    if not problem and result.stdout_truncated:
        problem = f"the job's report passed the output cap ({len(result.stdout)} bytes kept)"
    if not problem and not ended:
        problem = _death(result)
    return JobResult(records=records, ended=ended and not problem, problem=problem, interfered=interfered,
                     execution=result)


def run_job(job: Job, *, backend: str = "local") -> JobResult:
    """One job in a fresh sandbox (cold); `Pool.submit_job` for many."""
    from sandbox._api import run

    request, key = to_request(job)
    return read(run(request, backend=backend), key)


def _death(result: ExecResult) -> str:
    tail = result.stderr.strip()[-2000:]
    if result.status is Status.ok:
        return f"the job's program exited before reporting its end{': ' + tail if tail else ''}"
    what = {Status.timeout: "ran out of time", Status.memory: "ran out of memory",
            Status.output_limit: "passed the output cap"}.get(result.status, f"failed (exit code {result.exit_code})")
    return f"the job {what} before reporting its end{': ' + tail if tail else ''}"


@cache
def _runtime_source() -> str:
    """The child runtime's source, shipped into every job's working dir."""
    return Path(_job_child.__file__).read_text(encoding="utf-8")
