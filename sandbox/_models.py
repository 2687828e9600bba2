"""The sandbox's boundary types: what a caller asks for and what the supervisor reports."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sandbox._defaults import FILE_SIZE_MB

# Variables an ExecRequest may not set: the sandbox's private dirs and where its interpreter is.
RESERVED_ENV = frozenset({"HOME", "TMPDIR", "PATH"})


class Limits(BaseModel):
    """Resource limits for one execution. Every limit is enforced by the supervisor, not the program."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    wall_time_s: float = Field(10.0, gt=0, description="Wall-clock limit; the whole process tree is killed.")
    cpu_time_s: float = Field(10.0, gt=0, description="CPU seconds across all threads (RLIMIT_CPU).")
    memory_mb: int = Field(1024, gt=0, description="Memory of the whole process tree (cgroup, else RLIMIT_AS).")
    output_bytes: int = Field(1_000_000, gt=0, description="Cap on each of stdout and stderr; beyond it the run stops.")
    processes: int = Field(32, gt=0, description="Processes and threads the program may have at once.")
    file_size_mb: int = Field(FILE_SIZE_MB, gt=0, description="Largest file, and the size of the writable working dir.")


class Status(StrEnum):
    ok = "ok"
    error = "error"
    timeout = "timeout"
    memory = "memory"
    output_limit = "output_limit"


Isolation = Literal["full", "partial"]


class ExecRequest(BaseModel):
    """One program to run: Python source, its stdin, extra files in its working dir and argv."""

    model_config = ConfigDict(extra="forbid")

    code: str
    stdin: bytes = b""
    files: dict[str, bytes | str] = Field(default_factory=dict, description="Relative path -> content.")
    argv: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables on top of the sandbox's "
                                "own (a test suite's locale, its settings); HOME, TMPDIR and PATH stay the sandbox's.")
    limits: Limits = Field(default_factory=Limits)
    tree: str | None = Field(None, description="A host directory (absolute) the run sees read-only at /project, its "
                             "entries linked into the working dir around `files` (sandbox/_tree.py has the rule).")

    @field_validator("tree")
    @classmethod
    def _tree_path(cls, tree: str | None) -> str | None:
        if tree is not None and (not tree.startswith("/") or "\0" in tree):
            raise ValueError(f"ExecRequest.tree: {tree!r} must be an absolute path")
        return tree if tree is None else tree.rstrip("/") or "/"

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if not name or "=" in name or "\0" in name or "\0" in value:
                raise ValueError(f"ExecRequest.env: {name!r} is not a valid environment variable")
            if name in RESERVED_ENV:
                raise ValueError(f"ExecRequest.env: {name} is the sandbox's own (its private dirs, its interpreter)")
        return env


class ExecResult(BaseModel):
    """The supervisor's own account of one run; nothing the program prints can change it."""

    status: Status
    exit_code: int | None = Field(description="Real exit code; negative signal number if killed by a signal.")
    stdout: str
    stderr: str
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_s: float
    isolation: Isolation
    warm: str = Field("", description="How a warm sandbox ran it: '' (a cold child), 'preloaded' (its environment "
                      "imported ahead), 'prestarted' (its program run ahead, sandbox/job.py Preload.prestart) or "
                      "'declined: WHY' (a prestarted child could not take it: it ran cold).")

    @property
    def ok(self) -> bool:
        return self.status is Status.ok

    def cli_json(self) -> dict[str, object]:
        """The one object `semcoder sandbox run` prints."""
        return {
            "status": self.status.value,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "duration_s": round(self.duration_s, 6),
            "isolation": self.isolation,
        }
