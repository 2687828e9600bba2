"""Shared fixtures: `backend` runs a test once per sandbox backend, judged by host-side evidence.

Docker params skip when no engine or image is available, unless SEMCODER_REQUIRE_DOCKER=1 (CI),
where they fail with the reason.
"""

from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path

import pytest

from sandbox import ExecResult, Limits, SandboxError, run
from sandbox._api import shared_backend


@functools.cache
def _docker_unavailable_reason() -> str | None:
    try:
        shared_backend("docker")
    except (SandboxError, ImportError) as exc:
        return str(exc)
    return None


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def backend(request: pytest.FixtureRequest) -> str:
    """The backend name; every test using it must hold for both."""
    if request.param == "docker" and (reason := _docker_unavailable_reason()):
        if os.environ.get("SEMCODER_REQUIRE_DOCKER") == "1":
            pytest.fail(f"SEMCODER_REQUIRE_DOCKER=1 but the Docker sandbox is unavailable: {reason}")
        pytest.skip(f"no Docker sandbox here: {reason}")
    return request.param


@pytest.fixture
def sandboxed(backend: str):
    """run(code, **kw) on the parametrized backend."""

    def _run(code: str, **kwargs: object) -> ExecResult:
        return run(code, backend=backend, **kwargs)  # type: ignore[arg-type]

    return _run


@pytest.fixture
def marker() -> str:
    """A unique process name (<= 15 chars, the kernel's comm limit) to find leftovers on the host."""
    return "sbx" + uuid.uuid4().hex[:12]


def _host_processes_named(name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def host_processes_named():
    """PIDs on the HOST whose comm is the given name (what prctl(PR_SET_NAME) sets in the sandbox)."""
    return _host_processes_named


@pytest.fixture
def fast_limits() -> Limits:
    return Limits(wall_time_s=5, cpu_time_s=5, memory_mb=256)
