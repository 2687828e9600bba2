"""Runs repairs in the background: a fixed number of worker threads over a queue, one shared sandbox pool.

Each run is the agent's compiled graph streaming over the checkpointer. After every node the manager copies
the newly checkpointed history entries into the event log (so events are always a prefix of what is saved,
even across a crash) and records progress. A restarted server queues every unfinished run again; the graph
resumes from its last checkpoint, so finished nodes are not redone. Cancel and shutdown act between nodes.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from typing import Any

import sandbox
from agent.api.store import Progress, RunBook
from agent.environment import Environment
from agent.graph import build_graph, initial_state, open_deps, thread_config
from agent.persistence import TaskSnapshots, load_task
from agent.preflight import check_model
from agent.repair_cli import outcome_of
from agent.state import RunConfig
from agent.tasks import Task

log = logging.getLogger("semcoder.api")
CANCELLED = "cancelled by request"


class RunManager:
    """`pool` is the shared one, on semcoder's own interpreter; a run on a project's own (RunConfig.python) gets a
    pool of `sandbox_workers` on that interpreter for its duration."""

    def __init__(self, book: RunBook, pool: sandbox.Pool, concurrency: int, sandbox_workers: int = 2) -> None:
        self._book = book
        self._pool = pool
        self._sandbox_workers = sandbox_workers
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._cancelled: set[str] = set()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"semcoder-run-{index}", daemon=True)
                         for index in range(concurrency)]

    def start(self) -> int:
        """Queues the runs a previous server left unfinished, then starts the workers; returns how many."""
        pending = self._book.unfinished()
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
        run_id = self._book.create(task, config, target)
        environment = environment or Environment(python=config.python)
        self._book.append_event(run_id, "queued", {
            "kind": task.kind, "target": target, "config": config.model_dump(mode="json"),
            "environment": {**environment.model_dump(), "description": environment.describe()}})
        self._queue.put(run_id)
        return run_id

    def cancel(self, run_id: str) -> bool:
        """False if the run had already ended. A running run stops at its next node boundary."""
        with self._lock:
            if not self._book.finish(run_id, "cancelled", reason=CANCELLED):
                return False
            self._cancelled.add(run_id)
            if run_id not in self._active:  # a queued run: no worker will report it
                self._book.append_event(run_id, "done", {"status": "cancelled", "stop_reason": CANCELLED})
        return True

    def _work(self) -> None:
        while (run_id := self._queue.get()) is not None:
            try:
                self._run(run_id)
            except Exception as exc:  # infrastructure trouble ends this run, never the worker
                log.exception("run %s failed", run_id)
                self._end(run_id, "error", Progress(iterations=0, executions=0, tests_passed=0, tests_total=0,
                                                    diff="", stop_reason=f"{type(exc).__name__}: {exc}"))
            finally:
                with self._lock:
                    self._active.discard(run_id)

    def _run(self, run_id: str) -> None:
        with self._lock:
            if self._stopping.is_set() or not self._book.mark_running(run_id):
                return  # cancelled while queued, or the server is shutting down
            self._active.add(run_id)
        task, config = self._book.inputs(run_id)
        check_model(task, config)  # the model's endpoint, as `semcoder repair` checks it: a ModelError ends the run
        snapshots = self._book.db.snapshots
        with contextlib.ExitStack() as stack:
            pool = self._pool if config.python is None else stack.enter_context(
                sandbox.Pool(workers=self._sandbox_workers, python=config.python))
            deps = stack.enter_context(open_deps(config, snapshots, pool=pool))
            isolation = deps.isolation
            self._book.record_isolation(run_id, isolation)
            graph = build_graph(deps, self._book.db.checkpointer)
            events = _EventCopier(self._book, run_id)
            values = self._state(graph, run_id)
            events.copy(values)  # entries a crash saved but did not report
            self._book.append_event(run_id, "started", {"resumed": bool(values),
                                                        "iteration": values.get("iteration", 0),
                                                        "isolation": isolation})
            inputs = None if values else initial_state(run_id, task, config, snapshots)
            for _update in graph.stream(inputs, thread_config(run_id), stream_mode="updates", durability="sync"):
                values = self._state(graph, run_id)
                events.copy(values)
                self._book.record_progress(run_id, progress_of(values, snapshots))
                if run_id in self._cancelled or self._stopping.is_set():
                    break
            finished = not graph.get_state(thread_config(run_id)).next
        self._conclude(run_id, values, finished)

    @staticmethod
    def _state(graph: Any, run_id: str) -> dict[str, Any]:
        return dict(graph.get_state(thread_config(run_id)).values)

    def _conclude(self, run_id: str, values: dict[str, Any], finished: bool) -> None:
        if run_id in self._cancelled:
            self._report_cancel(run_id, values)
        elif finished:
            snapshots = self._book.db.snapshots
            outcome = outcome_of(values, load_task(values, snapshots))
            self._end(run_id, outcome["status"], progress_of(values, snapshots))
        # else: shutting down mid-run; the run stays 'running' and resumes on the next start

    def _end(self, run_id: str, status: str, progress: Progress) -> None:
        if self._book.finish(run_id, status, progress):  # type: ignore[arg-type]
            self._book.append_event(run_id, "done", {"status": status, **progress.model_dump()})
        elif run_id in self._cancelled:
            self._report_cancel(run_id, None)

    def _report_cancel(self, run_id: str, values: dict[str, Any] | None) -> None:
        progress = progress_of(values, self._book.db.snapshots) if values else None
        if progress is not None:
            self._book.record_progress(run_id, progress)
        known = progress.model_dump() if progress else {}
        self._book.append_event(run_id, "done", {**known, "status": "cancelled", "stop_reason": CANCELLED})


class _EventCopier:
    """Appends one `node` event per checkpointed history entry not yet in the event log."""

    def __init__(self, book: RunBook, run_id: str) -> None:
        self._book = book
        self._run_id = run_id
        self._copied = book.count_events(run_id, "node")

    def copy(self, values: dict[str, Any]) -> None:
        for entry in (values.get("history") or [])[self._copied:]:
            self._book.append_event(self._run_id, "node", entry)
            self._copied += 1


def progress_of(values: dict[str, Any], snapshots: TaskSnapshots) -> Progress:
    if not values.get("task_sha256"):
        return Progress(iterations=0, executions=0, tests_passed=0, tests_total=0, diff="")
    outcome = outcome_of(values, load_task(values, snapshots))
    return Progress(iterations=outcome["iterations"], executions=values.get("executions", 0),
                    tests_passed=outcome["tests_passed"], tests_total=outcome["tests_total"], diff=outcome["diff"],
                    stop_reason=values.get("stop_reason", ""))
