"""The seam between the sandbox's public API and an isolation mechanism (bubblewrap, Docker)."""

from __future__ import annotations

from typing import Protocol

from sandbox._models import ExecRequest, ExecResult, Isolation


class Backend(Protocol):
    """Runs one request in isolation and reports what happened.

    Untrusted code failing is returned as an ExecResult; only the backend itself failing raises
    (SandboxError with a message a user can act on).
    """

    @property
    def isolation(self) -> Isolation: ...

    def execute(self, request: ExecRequest) -> ExecResult: ...

    def close(self) -> None: ...
