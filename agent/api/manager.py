"""Runs the server's repairs in the background, on any number of replicas sharing one database.

Each replica has a fixed number of worker threads. A worker claims the oldest unfinished run the API accepted that
no replica holds (agent/persistence.RunStore.claim: a lease, taken atomically) and drives it as every front end
drives one (agent/runs.py). A heartbeat thread renews the leases of the runs this replica drives. A replica that
dies stops renewing: once its leases run out, the other replicas claim its runs, which resume from their last
checkpoint (finished nodes are not redone). A replica that finds it no longer holds a run (its lease ran out while it
was stalled, and another took it) stops driving it at the next node. A graceful shutdown gives its runs back at
once. Cancel (any replica, any front end) is the run's status, seen by its driver at the next node.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid

import sandbox
from agent import runs
from agent.environment import Environment
from agent.persistence import RunStore
from agent.preflight import check_model
from agent.state import RunConfig
from agent.tasks import Task

log = logging.getLogger("semcoder.api")
POLL_S = 1.0  # how often an idle worker looks for a run it did not hear of (another replica accepted it, or a
# dead replica's lease ran out)


class RunManager:
    """`pool` is the shared one, on semcoder's own interpreter; a run on a project's own (RunConfig.python) gets a
    pool of `sandbox_workers` on that interpreter for its duration."""

    def __init__(self, store: RunStore, pool: sandbox.Pool, concurrency: int, sandbox_workers: int = 2,
                 lease_s: float = 15.0) -> None:
        self.replica = uuid.uuid4().hex[:12]
        self._store = store
        self._pool = pool
        self._sandbox_workers = sandbox_workers
        self._lease_s = lease_s
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._stopping = threading.Event()
        self._work_waiting = threading.Condition()
        self._threads = [threading.Thread(target=self._work, name=f"semcoder-run-{index}", daemon=True)
                         for index in range(concurrency)]
        self._threads.append(threading.Thread(target=self._heartbeat, name="semcoder-lease", daemon=True))

    def start(self) -> int:
        """Starts the workers; returns how many unfinished runs are waiting (some may be another replica's)."""
        for thread in self._threads:
            thread.start()
        return self._store.count_unfinished("http")

    def close(self, timeout_s: float = 60.0) -> None:
        """Running runs stop after their current node and are given back, to resume on any replica."""
        self._stopping.set()
        with self._work_waiting:
            self._work_waiting.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)

    @property
    def running(self) -> int:
        return len(self._active)

    def submit(self, task: Task, config: RunConfig, target: str, environment: Environment | None = None) -> str:
        run_id = runs.start(self._store, task, config, target, "http", environment)
        with self._work_waiting:
            self._work_waiting.notify()  # a worker of this replica claims it now, not at its next poll
        return run_id

    def _work(self) -> None:
        while not self._stopping.is_set():
            run_id = self._store.claim("http", self.replica, self._lease_s)
            if run_id is None:
                with self._work_waiting:
                    self._work_waiting.wait(POLL_S)
                continue
            with self._lock:
                self._active.add(run_id)
            try:
                self._run(run_id)
            except Exception:  # infrastructure trouble ends this run (runs.drive recorded why), never the worker
                log.exception("run %s failed", run_id)
            finally:
                with self._lock:
                    self._active.discard(run_id)
                self._store.release(self.replica, run_id)

    def _run(self, run_id: str) -> None:
        if self._store.status(run_id) not in ("queued", "running"):
            return  # cancelled while queued
        try:
            task, config = self._store.inputs(run_id)
            check_model(task, config)  # the model's endpoint, as `semcoder repair` checks it
        except Exception as exc:
            runs.fail(self._store, run_id, exc)
            raise
        with contextlib.ExitStack() as stack:
            pool = self._pool if config.python is None else stack.enter_context(
                sandbox.Pool(workers=self._sandbox_workers, python=config.python))
            runs.drive(self._store, run_id, pool=pool, stopping=lambda: self._stopping.is_set() or
                       not self._store.holds(self.replica, run_id))

    def _heartbeat(self) -> None:
        """Renews this replica's leases a few times per lease, so a slow node never loses its run."""
        while not self._stopping.wait(self._lease_s / 4):
            with self._lock:
                active = list(self._active)
            try:
                lost = set(active) - self._store.renew(self.replica, active, self._lease_s)
            except Exception:  # the database is unreachable for a moment: try again at the next beat
                log.exception("could not renew the leases of %s", ", ".join(active))
                continue
            for run_id in lost:
                log.warning("run %s: this replica's lease ran out and another replica holds it now", run_id)
