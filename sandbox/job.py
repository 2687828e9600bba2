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
"""

from __future__ import annotations

import marshal
import secrets
from concurrent.futures import Future
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from sandbox import _job_child
from sandbox._models import ExecRequest, ExecResult, Limits, SandboxError, Status

RUNTIME_FILE = _job_child.MODULE + ".py"
JOB_FILE = _job_child.JOB_FILE
# The runtime is imported before the program's own imports; the program's names never shadow it.
_LAUNCH = f"from {_job_child.MODULE} import serve as _semcoder_serve\n"
_RESERVED = {RUNTIME_FILE, JOB_FILE}


class Job(BaseModel):
    """One in-sandbox program run: its source, its data (marshal-able), extra files and outer limits."""

    model_config = ConfigDict(extra="forbid")

    program: str = Field(description="Source defining main(data, channel); runs as __main__.")
    data: Any = None
    files: dict[str, bytes | str] = Field(default_factory=dict, description="Relative path -> content.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables (ExecRequest.env).")
    limits: Limits = Field(default_factory=Limits)


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
                 output_bytes: int | None = None, per_unit_bytes: int = 0, file_size_mb: int = 64) -> Limits:
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
    key = secrets.token_hex(32)
    files = {**job.files, RUNTIME_FILE: _runtime_source(), JOB_FILE: marshal.dumps({"data": job.data, "key": key})}
    # Guarded: multiprocessing's spawn (and forkserver) children import the main module as __mp_main__, and one
    # of those must not serve the job again (its file is gone, its channel is the parent's).
    code = _LAUNCH + job.program + "\nif __name__ == '__main__':\n    _semcoder_serve(main)\n"
    return ExecRequest(code=code, files=files, env=job.env, limits=job.limits), key


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
