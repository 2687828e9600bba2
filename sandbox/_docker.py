"""Docker backend: every request runs in a fresh, locked-down container of the sandbox image.

The container has no network, a read-only root filesystem, a size-capped tmpfs as its working dir, no
capabilities, no-new-privileges, pids/memory/CPU limits and an unprivileged user (sandbox/Dockerfile). A request's
tree (a project) is bind-mounted read-only at /project, as the local backend binds it, and linked into the working
dir around the request's files; the engine must see the tree's path (a local engine, not a remote DOCKER_HOST).
The request travels over the container's attach connection (sandbox/_docker_io.py).

The result is the supervisor's own account: which limit this process enforced, the container's exit
code and the engine's OOMKilled flag; nothing the program prints can change it.

Starting a container is most of a run's cost, so while one request runs the backend starts the next
container for the same limits (a "spare"): it waits, idle, for a request on its stdin. Spares are
never reused: each serves exactly one request and is removed after it, like any other container.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests
import urllib3
from docker.types import Mount, Ulimit

from sandbox._docker_io import (
    BOOTSTRAP,
    HEADER_DIGITS,
    close_attached,
    encode_request,
    is_quiet,
    pump,
    raw_socket,
)
from sandbox._errors import SandboxError
from sandbox._models import ExecRequest, ExecResult, Isolation, Limits, Status
from sandbox._tree import TREE_IN_SANDBOX

DEFAULT_IMAGE = "semcoder-sandbox:latest"
CONTAINER_LABEL = "semcoder.sandbox"  # on every container we create: `docker ps -a --filter label=...`
_WORKDIR = "/work"
_UID = 10001  # the `sandbox` user of sandbox/Dockerfile
_SIGNAL_EXIT_BASE = 128  # docker-init (tini) exits 128+N when the program dies of signal N
_SIGKILL = 9
_EXIT_GRACE_S = 1.0  # output ends a moment before the engine records the exit
_CPU_SLACK_S = 0.1  # one CFS period: how far CPU time can run ahead of wall time x cpus
_MAX_SPARES = 4  # per Limits; idle spares cost ~10 MB each


@dataclass
class _Container:
    id: str
    attached: Any  # the hijacked attach connection: stdin in, multiplexed stdout and stderr out


class DockerBackend:
    """Runs each request in its own container; one engine connection is shared by all threads.

    `image` must have been built from sandbox/Dockerfile (`bash scripts/docker_setup.sh` does that).
    `cpus` caps the CPU share of each container. `base_url` names the engine (default: DOCKER_HOST,
    else the local socket). `keep_spares` starts the next container while a request runs (see
    benchmarks/docker_spares.py for what it saves; off: nothing runs between requests).
    """

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        *,
        cpus: float = 1.0,
        base_url: str | None = None,
        keep_spares: bool = True,
    ):
        if cpus <= 0:
            raise ValueError(f"cpus must be positive, got {cpus}")
        self._image = image
        self._cpus = cpus
        self._api = _connect(base_url)
        _require_image(self._api, image)
        # Every container of this backend carries it, so close() can sweep what a crash left behind.
        self.session_label = f"{CONTAINER_LABEL}={uuid.uuid4().hex}"
        # Spares by what a container is made with: the limits and the tree it binds.
        self._spares: dict[tuple[Limits, str | None], list[_Container]] = {}
        self._spares_lock = threading.Lock()
        self._closed = False
        self._spare_starter = ThreadPoolExecutor(1, thread_name_prefix="docker-spare") if keep_spares else None

    @property
    def isolation(self) -> Isolation:
        return "full"

    def execute(self, request: ExecRequest) -> ExecResult:
        payload = encode_request(request)  # bad input fails before any container exists
        kind = (request.limits, request.tree)
        container = self._take_spare(kind) or self._start_container(kind)
        if self._spare_starter is not None:
            with contextlib.suppress(RuntimeError):  # closed, or the interpreter is exiting: no spare needed
                self._spare_starter.submit(self._add_spare, kind)
        try:
            result = self._run(container, payload, request.limits)
        except BaseException:
            self._discard(container)
            raise
        self._remove(container.id)
        return result

    def close(self) -> None:
        """Removes the spares and any container of this backend still there (none unless a run was
        interrupted)."""
        with self._spares_lock:
            self._closed = True
        if self._spare_starter is not None:
            self._spare_starter.shutdown(wait=True)
        with self._spares_lock:
            spares = [container for kept in self._spares.values() for container in kept]
            self._spares.clear()
        for container in spares:
            self._discard(container)
        try:
            for leftover in self._api.containers(all=True, quiet=True, filters={"label": self.session_label}):
                self._remove_quietly(leftover["Id"])
        except (docker.errors.DockerException, requests.RequestException):
            pass  # the engine is gone, and its containers with it or out of our reach
        finally:
            self._api.close()

    def _start_container(self, kind: tuple[Limits, str | None]) -> _Container:
        """Created, attached before it starts (so no output is lost), started: its bootstrap waits on stdin."""
        limits, tree = kind
        host_config = self._api.create_host_config(**_host_config_options(limits, self._cpus, tree))
        with _engine_errors("create a container"):
            created = self._api.create_container(
                self._image,
                command=["python3", "-c", BOOTSTRAP, str(HEADER_DIGITS)],
                user=f"{_UID}:{_UID}",
                working_dir=_WORKDIR,
                environment={"HOME": _WORKDIR, "TMPDIR": _WORKDIR, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
                             "USER": "sandbox", "LOGNAME": "sandbox"},
                stdin_open=True,  # with detach=False this also sets StdinOnce: our EOF closes its stdin
                network_disabled=True,
                labels=dict([self.session_label.split("=", 1)]),
                host_config=host_config,
            )
        container = _Container(created["Id"], None)
        try:
            with _engine_errors("attach to the container"):
                container.attached = self._api.attach_socket(
                    container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
                )
            with _engine_errors("start the container"):
                self._api.start(container.id)
        except BaseException:
            self._discard(container)
            raise
        return container

    def _take_spare(self, kind: tuple[Limits, str | None]) -> _Container | None:
        while True:
            with self._spares_lock:
                kept = self._spares.get(kind)
                if not kept:
                    return None
                container = kept.pop()
            if is_quiet(container.attached):
                return container
            self._discard(container)  # it died or spoke before any request: not fit to serve one

    def _add_spare(self, kind: tuple[Limits, str | None]) -> None:
        """Runs on the spare starter thread. A failure here only costs the next request a cold start,
        which then reports the engine's problem itself."""
        with self._spares_lock:
            if self._closed or len(self._spares.get(kind, [])) >= _MAX_SPARES:
                return
        try:
            container = self._start_container(kind)
        except SandboxError:
            return
        with self._spares_lock:
            if self._closed:
                unwanted = [container]
            else:
                # Only the latest limits and tree keep spares: a caller that changes them leaves none idle.
                unwanted = [c for key, kept in self._spares.items() if key != kind for c in kept]
                self._spares = {kind: [*self._spares.get(kind, []), container]}
        for spare in unwanted:
            self._discard(spare)

    def _run(self, container: _Container, payload: bytes, limits: Limits) -> ExecResult:
        started = time.monotonic()
        deadline = started + limits.wall_time_s
        try:
            streams = pump(raw_socket(container.attached), payload, deadline, limits.output_bytes)
        finally:
            # Before any kill: the engine reports an exit only once it has flushed the output to us.
            close_attached(container.attached)
        if streams.stopped_for is not None:
            self._kill(container.id)
        exit_code = self._wait_for_exit(container.id, deadline)
        if exit_code is None:  # its output ended but it ran on past the deadline
            streams.stopped_for = Status.timeout
            self._kill(container.id)
            exit_code = self._wait_for_exit(container.id, None)
        duration_s = time.monotonic() - started
        with _engine_errors("inspect the container"):
            oom_killed = bool(self._api.inspect_container(container.id)["State"].get("OOMKilled"))
        limit = _limit_that_stopped(streams.stopped_for, exit_code, oom_killed, duration_s * self._cpus, limits)
        return ExecResult(
            # Like the local backend: a run a limit stopped has no exit code of its own.
            status=limit or (Status.ok if exit_code == 0 else Status.error),
            exit_code=None if limit else _exit_code(exit_code),
            stdout=streams.stdout.decode("utf-8", errors="backslashreplace"),
            stderr=streams.stderr.decode("utf-8", errors="backslashreplace"),
            stdout_truncated=streams.stdout_truncated,
            stderr_truncated=streams.stderr_truncated,
            duration_s=duration_s,
            isolation=self.isolation,
        )

    def _wait_for_exit(self, container_id: str, deadline: float | None) -> int | None:
        """The container's exit code, or None if it still runs at the deadline (None: wait for good)."""
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0) + _EXIT_GRACE_S
        try:
            with _engine_errors(f"wait for container {container_id[:12]}"):
                return int(self._api.wait(container_id, timeout=timeout)["StatusCode"])
        except SandboxError as exc:
            if _is_read_timeout(exc.__cause__):
                return None
            raise

    def _kill(self, container_id: str) -> None:
        try:
            self._api.kill(container_id)
        except docker.errors.APIError as exc:
            # 409: it exited on its own between our decision and the kill; nothing left to stop.
            if exc.status_code != 409:
                raise SandboxError(f"Docker backend: cannot kill container {container_id[:12]}: {exc}") from exc

    def _remove(self, container_id: str) -> None:
        with _engine_errors(f"remove container {container_id[:12]}"):
            self._api.remove_container(container_id, force=True)

    def _discard(self, container: _Container) -> None:
        """Cleanup on a path that has its own news (an exception in flight, a spare not needed)."""
        if container.attached is not None:
            close_attached(container.attached)
        self._remove_quietly(container.id)

    def _remove_quietly(self, container_id: str) -> None:
        with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
            self._api.remove_container(container_id, force=True)


def _connect(base_url: str | None) -> docker.APIClient:
    try:
        if base_url is None:
            return docker.from_env(version="auto").api
        return docker.APIClient(base_url=base_url, version="auto")
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise SandboxError(
            f"Docker backend: no Docker engine answers ({exc}). Start one (e.g. `bash scripts/docker_setup.sh` "
            "as root) or use backend='local'."
        ) from exc


def _require_image(api: docker.APIClient, image: str) -> None:
    try:
        api.inspect_image(image)
    except docker.errors.ImageNotFound as exc:
        raise SandboxError(
            f"Docker backend: image {image!r} not found. Build it with "
            f"`docker build -t {image} sandbox/` (or `bash scripts/docker_setup.sh` on a machine without a registry)."
        ) from exc
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise SandboxError(f"Docker backend: cannot inspect image {image!r}: {exc}") from exc


class _engine_errors:
    """Turns the engine failing into a SandboxError that says what we were doing."""

    def __init__(self, doing: str):
        self._doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, docker.errors.ImageNotFound):
            raise SandboxError(f"Docker backend: cannot {self._doing}: {exc}. Run `bash scripts/docker_setup.sh`.")
        if isinstance(exc, docker.errors.DockerException | requests.RequestException):
            raise SandboxError(f"Docker backend: cannot {self._doing}: {exc}") from exc
        return False


def _is_read_timeout(exc: BaseException | None) -> bool:
    # requests reports a read timeout on a stream as ConnectionError wrapping urllib3's ReadTimeoutError.
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return isinstance(exc, requests.exceptions.ConnectionError) and any(
        isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args
    )


def _host_config_options(limits: Limits, cpus: float, tree: str | None = None) -> dict[str, Any]:
    memory = f"{limits.memory_mb}m"
    cpu_seconds = math.ceil(limits.cpu_time_s)
    file_bytes = limits.file_size_mb * 1024 * 1024
    return {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {_WORKDIR: f"rw,nosuid,nodev,size={limits.file_size_mb}m,uid={_UID},gid={_UID},mode=0700"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "ipc_mode": "none",
        "init": True,  # docker-init as pid 1: the program gets ordinary signal semantics and zombies are reaped
        "pids_limit": limits.processes + 1,  # + docker-init
        "mem_limit": memory,
        "memswap_limit": memory,  # equal to mem_limit: no swap
        "nano_cpus": int(cpus * 1e9),
        # soft == hard: the kernel SIGKILLs at the limit, so no handler can outlive it.
        "ulimits": [
            Ulimit(name="cpu", soft=cpu_seconds, hard=cpu_seconds),
            Ulimit(name="fsize", soft=file_bytes, hard=file_bytes),
        ],
        "mounts": [Mount(TREE_IN_SANDBOX, tree, type="bind", read_only=True)] if tree else [],
    }


def _limit_that_stopped(
    stopped_for: Status | None, exit_code: int, oom_killed: bool, cpu_ceiling_s: float, limits: Limits
) -> Status | None:
    """Which limit ended the run, if any. `cpu_ceiling_s` is wall time x cpus: the most CPU time the
    container's quota let it use, so a SIGKILL earlier than the CPU limit was not RLIMIT_CPU's."""
    if stopped_for is not None:
        return stopped_for
    if oom_killed:
        return Status.memory
    cpu_limit_reachable = cpu_ceiling_s + _CPU_SLACK_S >= math.ceil(limits.cpu_time_s)
    if exit_code == _SIGNAL_EXIT_BASE + _SIGKILL and cpu_limit_reachable:
        return Status.timeout
    return None


def _exit_code(docker_exit_code: int) -> int:
    """Docker reports death by signal N as 128+N; ExecResult wants -N. (A program's own exit(128+N)
    looks the same from outside; we read it as the signal.)"""
    if _SIGNAL_EXIT_BASE < docker_exit_code <= _SIGNAL_EXIT_BASE + 64:
        return -(docker_exit_code - _SIGNAL_EXIT_BASE)
    return docker_exit_code
