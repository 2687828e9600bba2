"""Warm pools: many executions in parallel, each still in a fresh process with its own limits."""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sandbox._api import backend_named
from sandbox._backend import Backend
from sandbox._errors import SandboxError
from sandbox._job_child import FrameReader
from sandbox._local import LocalBackend
from sandbox._models import ExecRequest, ExecResult, Limits
from sandbox._worker import LocalWorker, WorkerDied
from sandbox.job import Job, JobResult, read, to_request, warm_spec

_STOP = object()
Output = Callable[[bytes], None]  # a job's stdout, piece by piece as it comes (see LocalWorker.execute)


class _LocalSlot(threading.Thread):
    """Owns one warm worker for its whole life.

    Workers are started from this long-lived thread on purpose: bwrap's --die-with-parent fires
    when the *thread* that spawned it exits.
    """

    def __init__(self, backend: LocalBackend, jobs: queue.PriorityQueue, workdir_mb: int) -> None:
        super().__init__(name="sandbox-slot", daemon=True)
        self._backend = backend
        self._jobs = jobs
        self._workdir_mb = workdir_mb
        self._worker: LocalWorker | None = None
        self.started_ok: Future[None] = Future()

    def run(self) -> None:
        try:
            self._worker = self._fresh_worker(self._workdir_mb)
        except BaseException as exc:
            self.started_ok.set_exception(exc)
            return
        self.started_ok.set_result(None)
        while (item := self._jobs.get()[2]) is not _STOP:
            request, future, warm, on_output = item
            if future.set_running_or_notify_cancel():
                self._serve(request, future, warm, not self._jobs.empty(), on_output)
        if self._worker:
            self._worker.close()

    def _serve(self, request: ExecRequest, future: Future[ExecResult], warm: dict[str, object] | None,
               queued: bool = False, on_output: Output | None = None) -> None:
        try:
            future.set_result(self._execute(request, warm, queued, on_output))
        except BaseException as exc:
            future.set_exception(exc)

    def _fresh_worker(self, workdir_mb: int, tree: str | None = None) -> LocalWorker:
        worker = self._backend.new_worker(workdir_mb, tree)
        worker.wait_ready()
        return worker

    def _usable_worker(self, request: ExecRequest) -> LocalWorker:
        """A worker binds one tree for its life: a request with another gets a fresh worker (one without a tree may
        run on a worker that has one: it sees that tree, read-only, and no links into it)."""
        worker = self._worker
        if worker is None or not worker.alive or worker.workdir_mb != request.limits.file_size_mb \
                or (request.tree is not None and worker.tree != request.tree):
            if worker is not None:
                worker.close()
            self._worker = None
            self._worker = self._fresh_worker(request.limits.file_size_mb, request.tree)
        return self._worker

    def _execute(self, request: ExecRequest, warm: dict[str, object] | None, queued: bool = False,
                 on_output: Output | None = None) -> ExecResult:
        """A worker that dies mid-job is replaced and the job retried once on a fresh one (whose output streams from
        its start again: what reads the stream must take the result as the judge)."""
        for attempt in (1, 2):
            worker = self._usable_worker(request)
            try:
                return self._backend.result(request, worker.execute(request, warm, queued, on_output))
            except WorkerDied:
                worker.close()
                self._worker = None
                if attempt == 2:
                    raise
            except SandboxError:
                worker.close()
                self._worker = None
                raise
        raise AssertionError("unreachable")


class _LocalPool:
    """Slots take jobs in order; an urgent job (a fix's confirmation) goes ahead of the ones still waiting."""

    _URGENT, _NORMAL, _LAST = 0, 1, 2

    def __init__(self, workers: int, backend: LocalBackend, workdir_mb: int) -> None:
        self._jobs: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()  # FIFO within a priority; entries never compare their payloads
        self._slots = [_LocalSlot(backend, self._jobs, workdir_mb) for _ in range(workers)]
        for slot in self._slots:
            slot.start()
        try:
            for slot in self._slots:
                slot.started_ok.result()
        except BaseException:
            self.close()
            raise

    def submit(self, request: ExecRequest, urgent: bool = False, warm: dict[str, object] | None = None,
               on_output: Output | None = None) -> Future[ExecResult]:
        future: Future[ExecResult] = Future()
        priority = self._URGENT if urgent else self._NORMAL
        self._jobs.put((priority, next(self._order), (request, future, warm, on_output)))
        return future

    def close(self) -> None:
        for _ in self._slots:
            self._jobs.put((self._LAST, next(self._order), _STOP))
        for slot in self._slots:
            slot.join()


class _ThreadedPool:
    """For backends without warm workers of their own (Docker): parallel execute() calls."""

    def __init__(self, workers: int, backend: Backend) -> None:
        self._backend = backend
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")

    def submit(self, request: ExecRequest, urgent: bool = False, warm: dict[str, object] | None = None,
               on_output: Output | None = None) -> Future[ExecResult]:
        # Docker: every job starts at once anyway, cold (a job's preload is only ever an optimisation), and its
        # output comes with its result (a stream is only ever early news of it).
        return self._executor.submit(self._backend.execute, request)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._backend.close()


class Pool:
    """Runs many requests in parallel on warm sandboxes.

    ``workers`` defaults to the CPU count. ``limits`` is used for every request that did not set
    its own ``limits`` (and sizes the local workers' working dirs). ``python`` (local backend): an
    interpreter or venv to run programs with instead of semcoder's own, e.g. a project's environment.
    """

    def __init__(self, workers: int | None = None, backend: str = "local", limits: Limits | None = None,
                 python: str | None = None) -> None:
        self.limits = limits or Limits()
        count = workers or os.cpu_count() or 1
        if count < 1:
            raise ValueError("Pool(workers=...) must be at least 1")
        chosen = backend_named(backend, python)
        self.backend_name = backend
        self.python = python  # a project's interpreter or venv; None: semcoder's own
        self.isolation = chosen.isolation
        self._backend = chosen
        if isinstance(chosen, LocalBackend):
            self._impl: _LocalPool | _ThreadedPool = _LocalPool(count, chosen, self.limits.file_size_mb)
        else:
            self._impl = _ThreadedPool(count, chosen)
        self._closed = False
        atexit.register(self.close)  # a forgotten pool still removes its cgroups and workers

    def isolation_report(self) -> dict[str, object]:
        """What isolation this pool's runs get (sandbox.isolation_report of its backend)."""
        from sandbox._host import isolation_report

        return isolation_report(self._backend)

    def _with_limits(self, request: ExecRequest) -> ExecRequest:
        if "limits" in request.model_fields_set:
            return request
        return request.model_copy(update={"limits": self.limits})

    def submit(self, request: ExecRequest, *, urgent: bool = False) -> Future[ExecResult]:
        """Queues a request; `urgent` ones start before any request still waiting (not before running ones)."""
        return self._submit(request, urgent, None)

    def _submit(self, request: ExecRequest, urgent: bool, warm: dict[str, object] | None,
                on_output: Output | None = None) -> Future[ExecResult]:
        if self._closed:
            raise SandboxError("this sandbox Pool is closed")
        return self._impl.submit(self._with_limits(request), urgent, warm, on_output)

    def submit_job(self, job: Job, *, urgent: bool = False,
                   on_record: Callable[[int, Any], None] | None = None) -> Future[JobResult]:
        """Runs a job (sandbox/job.py) on a warm sandbox; the future holds the host's reading of it. A job with a
        `preload` may start in a process that imported its environment's modules ahead (local backend).

        `on_record(index, record)`: each record the job sends, verified as the result's reading verifies it, in
        order, while the job still runs (a warm local pool; in this pool's thread), so that a caller can start on
        them early. It is early news only: the JobResult is the judge, and a record used early must be one of its
        records (a worker that died mid-job runs the job again, and its records come again from the first)."""
        request, key = to_request(job)
        judged: Future[JobResult] = Future()
        on_output = None if on_record is None else FrameReader(key, on_record).feed

        def done(future: Future[ExecResult]) -> None:
            try:
                judged.set_result(read(future.result(), key))
            except BaseException as exc:
                judged.set_exception(exc)

        self._submit(request, urgent, warm_spec(job), on_output).add_done_callback(done)
        return judged

    def run_jobs(self, jobs: Iterable[Job]) -> list[JobResult]:
        """Runs all jobs; results in the order given."""
        futures = [self.submit_job(job) for job in jobs]
        return [future.result() for future in futures]

    def map(self, requests: Iterable[ExecRequest]) -> list[ExecResult]:
        """Runs all requests; results in the order given."""
        futures = [self.submit(request) for request in requests]
        return [future.result() for future in futures]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._impl.close()
            atexit.unregister(self.close)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
