"""Sandbox jobs fanned out over a Ray cluster: one actor per node owns that node's warm `Pool`.

The driver keeps every job until its future is resolved, exactly once:

* jobs wait in the driver's queue (urgent ones first) and go to the node with the most free room; a node
  holds at most ``workers x in_flight_per_worker`` jobs (its pool's workers busy plus the next ones queued);
* results come back as each job finishes (futures resolve in completion order);
* a node lost mid-job (its actor, raylet or machine gone) has its actor killed and written off, and every job
  it held goes back to the front of the queue for another node. A job's future takes the first result only,
  and a lost node's late answers are ignored, so a job is never lost and never counted twice;
* the job's own failure (the sandbox raising SandboxError on that node) is the job's result, as with a local
  Pool.

Before any job runs, every node is asked what it is (``preflight_problems``): a node whose sandbox isolation is
partial, whose backend cannot start (no Docker image), or whose semcoder / Python / sandbox source differs from
the driver's is refused with a SandboxError naming it; nothing falls back to less isolation.

`ray` is imported only here, only when a RayRunner is made (the optional extra `.[ray]`).
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import platform
import queue
import socket
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from sandbox._errors import SandboxError
from sandbox.job import Job, JobResult

log = logging.getLogger("sandbox.ray")

PREFLIGHT_TIMEOUT_S = 600.0  # starting an actor and its warm pool on a loaded node; only ever a bound
_STOP = object()


def node_facts(backend: str) -> dict[str, Any]:
    """What the driver compares between itself and each node (a node adds its isolation report)."""
    try:
        version = metadata.version("semcoder-agent")
    except metadata.PackageNotFoundError:
        version = "not installed"
    return {"semcoder": version, "python": platform.python_version(), "sandbox_source": sandbox_fingerprint(),
            "backend": backend, "host": socket.gethostname()}


def sandbox_fingerprint() -> str:
    """A digest of the sandbox package's sources: the job protocol both ends must speak identically."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def preflight_problems(driver: dict[str, Any], nodes: dict[str, dict[str, Any]]) -> list[str]:
    """Why each node (name -> its facts and isolation report) may not run the driver's jobs; [] if all may."""
    problems = []
    for name, facts in nodes.items():
        report = facts.get("isolation") or {}
        if report.get("level") != "full":
            missing = ", ".join(map(str, report.get("missing") or [])) or "unknown"
            problems.append(f"node {name}: the {facts.get('backend')} sandbox's isolation is "
                            f"{report.get('level', 'unknown')!r} (missing: {missing}); install bubblewrap (or use "
                            "--backend docker with the sandbox image) on that node, or take it out of the cluster")
        for key, what in (("semcoder", "semcoder version"), ("python", "Python version"),
                          ("sandbox_source", "sandbox source (sandbox/*.py digest)")):
            if facts.get(key) != driver.get(key):
                problems.append(f"node {name}: {what} {facts.get(key)!r} differs from the driver's "
                                f"{driver.get(key)!r}; install the same semcoder and Python on every node")
    return problems


class _NodeSandbox:
    """The Ray actor on one node: that node's warm sandbox pool (made remote by RayRunner, never imported
    with ray at module level)."""

    def __init__(self, backend: str, workers: int) -> None:
        from sandbox._pool import Pool

        self._pool = Pool(workers, backend=backend)
        self._facts = {**node_facts(backend), "isolation": self._pool.isolation_report(), "workers": workers,
                       "pid": os.getpid()}

    def describe(self) -> dict[str, Any]:
        return self._facts

    def run(self, job: Job, urgent: bool) -> JobResult:
        return self._pool.submit_job(job, urgent=urgent).result()

    def close(self) -> None:
        self._pool.close()


@dataclass(eq=False)
class _Item:
    job: Job
    urgent: bool
    future: Future
    started: bool = False
    losses: int = 0


@dataclass(eq=False)
class _Node:
    name: str
    node_id: str
    actor: Any
    capacity: int
    workers: int
    inflight: dict[Any, _Item] = field(default_factory=dict)
    alive: bool = True
    done: int = 0

    @property
    def room(self) -> int:
        return self.capacity - len(self.inflight) if self.alive else 0


def _ray():
    try:
        import ray
    except ImportError as exc:
        raise SandboxError("--executor ray needs the optional extra: pip install 'semcoder-agent[ray]'") from exc
    return ray


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """A SandboxError unless something listens at ADDRESS (host:port), before Ray's own (long) retries."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise SandboxError(f"--ray-address {address!r}: expected HOST:PORT of the cluster's head (its GCS port)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise SandboxError(f"cannot reach the Ray cluster at {address}: {exc}; start it with "
                           f"`ray start --head --port {port}` (see docs/scale.md)") from exc


class RayRunner:
    """A `sandbox.JobRunner` over a Ray cluster (see the module docstring).

    `address`: the head's HOST:PORT; None: RAY_ADDRESS, a cluster already running on this machine, or a new
    one-node Ray here. `workers`: sandbox workers per node (default: the CPUs the node advertises to Ray; nodes
    advertising none get no sandbox). `backend`: each node's sandbox backend.
    """

    def __init__(self, address: str | None = None, *, workers: int | None = None, backend: str = "local",
                 in_flight_per_worker: int = 2) -> None:
        ray = _ray()
        self.backend = backend
        self.lost: list[str] = []  # names of the nodes written off
        self.retried = 0  # jobs sent again after their node was lost
        self._lock = threading.Lock()
        self._pending: collections.deque[_Item] = collections.deque()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._owns_ray = False
        if address:
            check_reachable(address)
        if not ray.is_initialized():
            _cluster_notices_to_stderr()
            try:
                ray.init(address=address or None, logging_level=logging.WARNING, log_to_driver=False)
            except Exception as exc:  # ConnectionError, a version mismatch (RuntimeError), a bad address (ValueError)
                raise SandboxError(f"cannot join the Ray cluster at {address or '(local)'}: {exc}") from exc
            self._owns_ray = True
        try:
            self.nodes = self._start_nodes(ray, workers, in_flight_per_worker)
        except BaseException:
            self._shutdown(ray)
            raise
        self._thread = threading.Thread(target=self._loop, name="sandbox-ray", daemon=True)
        self._thread.start()

    @property
    def workers(self) -> int:
        """Sandbox workers over all the nodes still alive."""
        return sum(node.workers for node in self.nodes if node.alive) or 1

    # -- preflight

    def _start_nodes(self, ray, workers: int | None, per_worker: int) -> list[_Node]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        found = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
        if not found:
            raise SandboxError("the Ray cluster has no alive node that offers CPUs")
        remote = ray.remote(_NodeSandbox)
        nodes = []
        for info in sorted(found, key=lambda n: (n["NodeManagerAddress"], n["NodeManagerPort"])):
            count = workers or int(info["Resources"]["CPU"])
            actor = remote.options(
                num_cpus=0, max_concurrency=count * per_worker + 2, max_restarts=0, max_task_retries=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(info["NodeID"], soft=False),
            ).remote(self.backend, count)
            name = f"{info['NodeManagerAddress']}:{info['NodeManagerPort']}"
            nodes.append(_Node(name=name, node_id=info["NodeID"], actor=actor, capacity=count * per_worker,
                               workers=count))
        try:
            facts, problems = {}, []
            for node in nodes:
                try:
                    facts[node.name] = ray.get(node.actor.describe.remote(), timeout=PREFLIGHT_TIMEOUT_S)
                except ray.exceptions.RayActorError as exc:
                    if exc.actor_init_failed:  # the node's sandbox refused to start (no Docker image, no bwrap...)
                        problems.append(f"node {node.name}: its sandbox did not start: {_cause(exc)}")
                    else:  # the node went away before its actor ran: not a node that could run jobs
                        node.alive = False
                        self.lost.append(node.name)
                        log.warning("ray: node %s was lost before its sandbox started; going on without it",
                                    node.name)
                except ray.exceptions.RayError as exc:
                    problems.append(f"node {node.name}: its sandbox did not start: {_cause(exc)}")
            problems += preflight_problems(node_facts(self.backend), facts)
            if not problems and not facts:
                problems.append("no node of the cluster is left to run jobs")
            if problems:
                raise SandboxError("the Ray cluster cannot run sandbox jobs:\n  " + "\n  ".join(problems))
        except BaseException:
            for node in nodes:
                _kill(ray, node.actor)
            raise
        return [node for node in nodes if node.alive]

    # -- the JobRunner protocol

    def submit_job(self, job: Job, *, urgent: bool = False) -> Future[JobResult]:
        item = _Item(job=job, urgent=urgent, future=Future())
        with self._lock:
            if self._closed:
                raise SandboxError("this Ray sandbox runner is closed")
            (self._pending.appendleft if urgent else self._pending.append)(item)
        self._events.put(None)
        return item.future

    def run_jobs(self, jobs) -> list[JobResult]:
        futures = [self.submit_job(job) for job in jobs]
        return [future.result() for future in futures]

    # -- the dispatcher (one thread: all Ray calls about jobs happen here)

    def _loop(self) -> None:
        while (event := self._events.get()) is not _STOP:
            if event is not None:
                self._finish(*event)
            self._dispatch()

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    return
                node = max(self.nodes, key=lambda n: n.room)
                if node.room <= 0:
                    if not any(n.alive for n in self.nodes):
                        self._fail_pending(SandboxError(f"every Ray node was lost ({', '.join(self.lost)}); "
                                                        "the jobs left did not run"))
                    return
                item = self._pending.popleft()
            if not item.started:
                item.started = True
                if not item.future.set_running_or_notify_cancel():
                    continue
            ref = node.actor.run.remote(item.job, item.urgent)
            node.inflight[ref] = item
            log.debug("ray: a job to node %s (%d in flight there)", node.name, len(node.inflight))
            ref.future().add_done_callback(lambda done, node=node, ref=ref: self._events.put((node, ref, done)))

    def _finish(self, node: _Node, ref, done: Future) -> None:
        item = node.inflight.pop(ref, None)
        if item is None:  # the node was written off; its jobs went elsewhere
            return
        ray = _ray()
        try:
            result = done.result()
        except ray.exceptions.RayTaskError as exc:  # the job's own error on a live node, as a Pool would raise it
            item.future.set_exception(_job_error(exc))
        except ray.exceptions.TaskCancelledError as exc:
            item.future.set_exception(SandboxError(f"the job was cancelled on node {node.name}: {exc}"))
        except ray.exceptions.RayError as exc:  # actor, worker, raylet or node gone: the job goes elsewhere
            node.inflight[ref] = item
            self._lose(ray, node, exc)
        except BaseException as exc:
            item.future.set_exception(exc)
        else:
            node.done += 1
            item.future.set_result(result)

    def _lose(self, ray, node: _Node, exc: BaseException) -> None:
        items = list(node.inflight.values())
        node.inflight.clear()
        node.alive = False
        self.lost.append(node.name)
        _kill(ray, node.actor)
        with self._lock:
            for item in reversed(items):
                item.losses += 1
                self._pending.appendleft(item)
            self.retried += len(items)
        log.warning("ray: lost node %s (%s); %d job(s) it held go to the other nodes", node.name,
                    type(exc).__name__, len(items))

    def _fail_pending(self, error: BaseException) -> None:
        while self._pending:
            item = self._pending.popleft()
            if item.started or item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)

    # -- closing

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._events.put(_STOP)
        self._thread.join()
        ray = _ray()
        with self._lock:
            self._fail_pending(SandboxError("the Ray sandbox runner was closed before this job ran"))
        for node in self.nodes:
            for item in node.inflight.values():
                if not item.future.done():
                    item.future.set_exception(SandboxError("the Ray sandbox runner was closed mid-job"))
            node.inflight.clear()
        alive = [node for node in self.nodes if node.alive]
        try:
            ray.get([node.actor.close.remote() for node in alive], timeout=120)
        except Exception as exc:  # a node lost while closing: its actor is killed below all the same
            log.warning("ray: closing the node sandboxes: %s", _cause(exc))
        for node in self.nodes:
            _kill(ray, node.actor)
        self._shutdown(ray)

    def _shutdown(self, ray) -> None:
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> RayRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _cluster_notices_to_stderr() -> None:
    """Ray's driver prints the cluster's notices ("node ... has been marked dead") on sys.stdout; stdout is the
    command's (a JSON report), so they go to stderr. (With log_to_driver=False that printer serves only them.)"""
    try:
        from ray._private import worker
    except ImportError:
        return
    original = getattr(worker, "print_to_stdstream", None)
    if original is None or getattr(original, "to_stderr", False):
        return

    def to_stderr(data: dict, ignore_prefix: bool) -> None:
        original({**data, "is_err": True}, ignore_prefix)

    to_stderr.to_stderr = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


def _kill(ray, actor) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception as exc:  # already dead, or its node is gone
        log.debug("ray: kill %s: %s", actor, exc)


def _job_error(exc: BaseException) -> BaseException:
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else SandboxError(str(exc))


def _cause(exc: BaseException) -> str:
    text = str(_job_error(exc))
    return text.strip().splitlines()[-1][:500] if text.strip() else type(exc).__name__
