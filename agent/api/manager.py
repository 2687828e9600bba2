"""Runs the server's repairs in the background: a fixed number of worker threads over a queue, one shared sandbox
pool. Each run is driven as every front end drives one (agent/runs.py); a restarted server queues again every
unfinished run it had accepted, which resumes from its last checkpoint. Shutdown acts between nodes.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading

import sandbox
from agent import runs
from agent.environment import Environment
from agent.persistence import RunStore
from agent.preflight import check_model
from agent.state import RunConfig
from agent.tasks import Task

log = logging.getLogger("semcoder.api")


class RunManager:
    """`pool` is the shared one, on semcoder's own interpreter; a run on a project's own (RunConfig.python) gets a
    pool of `sandbox_workers` on that interpreter for its duration."""

    def __init__(self, store: RunStore, pool: sandbox.Pool, concurrency: int, sandbox_workers: int = 2) -> None:
        self._store = store
        self._pool = pool
        self._sandbox_workers = sandbox_workers
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"semcoder-run-{index}", daemon=True)
                         for index in range(concurrency)]

    def start(self) -> int:
        """Queues the runs a previous server left unfinished, then starts the workers; returns how many."""
        pending = self._store.unfinished("http")
        for run_id in pending:
            self._queue.put(run_id)
        for thread in self._threads:
            thread.start()
        return len(pending)

    def close(self, timeout_s: float = 60.0) -> None:
        """Running runs stop after their current node and stay unfinished, to resume on the next start."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout_s)

    @property
    def running(self) -> int:
        return len(self._active)

    def submit(self, task: Task, config: RunConfig, target: str, environment: Environment | None = None) -> str:
        run_id = runs.start(self._store, task, config, target, "http", environment)
        self._queue.put(run_id)
        return run_id

    def _work(self) -> None:
        while (run_id := self._queue.get()) is not None:
            if self._stopping.is_set():
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
            runs.drive(self._store, run_id, pool=pool, stopping=self._stopping.is_set)
