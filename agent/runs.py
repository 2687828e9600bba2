"""Running a repair: the one way every front end (CLI, HTTP, ACP, MCP) starts, drives, watches and cancels a run.

A front end puts a run in the run store (`start`), then `drive`s it on a thread of its own:
- the graph streams over the store's checkpointer; after every node the newly checkpointed history entries are
  appended to the run's event log, so events are always a prefix of what is saved, even across a crash;
- each `node` event also carries what a viewer needs to show that step without the checkpoint (`detail`: the
  failing call and its rendered trace, the model's answers, each candidate's diff; capped) and the best attempt's
  test counts;
- progress is recorded in the run's row after every node;
- a cancel, from any front end and any process, is the row's status: the driver stops at the next node boundary;
- a run ends once: a `done` event follows the status change that won (finish vs cancel).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

import sandbox
from agent.diff import unified_diff
from agent.environment import Environment
from agent.graph import build_graph, initial_state, open_deps, thread_config
from agent.persistence import (
    Event,
    EventType,
    Origin,
    Progress,
    RunStatus,
    RunStore,
    TaskSnapshots,
    load_task,
)
from agent.repair_settings import RunSetup
from agent.state import Attempt, RunConfig
from agent.tasks import Task

CANCELLED = "cancelled by request"
INTERRUPTED = "interrupted (resume it by its id)"
DETAIL_CAP = 20_000  # characters of one rendered trace, answer or diff in an event; the checkpoint keeps all


class RepairOutcome(dict):
    """A run's outcome: the one object `semcoder repair --json` prints and the ACP and MCP front ends report."""

    @classmethod
    def of(cls, status: str, run_id: str = "", iterations: int = 0, diff: str = "", passed: int = 0,
           total: int = 0, stop_reason: str = "", confirmation: str = "",
           rejected: list[dict[str, Any]] | None = None, isolation: dict[str, Any] | None = None,
           notes: list[str] | None = None, setup: RunSetup | None = None) -> RepairOutcome:
        return cls(status=status, run_id=run_id, iterations=iterations, diff=diff, tests_passed=passed,
                   tests_total=total, stop_reason=stop_reason, confirmation=confirmation, rejected=rejected or [],
                   isolation=isolation or {}, notes=notes or [], setup=setup.model_dump() if setup else {})


def outcome_of(state: Mapping[str, Any], task: Task, isolation: dict[str, Any] | None = None) -> RepairOutcome:
    """The run's outcome from its state and task (load_task)."""
    best = Attempt(**state["best"]) if state.get("best") else None
    status = state.get("status", "running")
    if status == "running":
        status = "not_fixed"
    diff = unified_diff(task, best.files) if best is not None and status != "error" else ""
    rejected = [r for entry in state.get("history") or [] for r in entry.get("rejected") or [] if isinstance(r, dict)]
    return RepairOutcome.of(status, state["run_id"], state.get("iteration", 0), diff,
                            best.passed if best else 0, best.total if best else 0,
                            stop_reason=state.get("stop_reason", ""),
                            confirmation=best.confirmation if best is not None else "", rejected=rejected,
                            isolation=isolation, notes=task.notes, setup=RunSetup.of(task, RunConfig(**state["config"])))


def progress_of(values: Mapping[str, Any], snapshots: TaskSnapshots) -> Progress:
    if not values.get("task_sha256"):
        return Progress(iterations=0, executions=0, tests_passed=0, tests_total=0, diff="")
    outcome = outcome_of(values, load_task(values, snapshots))
    return Progress(iterations=outcome["iterations"], executions=values.get("executions", 0),
                    tests_passed=outcome["tests_passed"], tests_total=outcome["tests_total"], diff=outcome["diff"],
                    stop_reason=values.get("stop_reason", ""))


def start(store: RunStore, task: Task, config: RunConfig, target: str, origin: Origin,
          environment: Environment | None = None, session: str = "", prompt: str | None = None) -> str:
    """A queued run and its `queued` event; returns the run's id."""
    run_id = store.create(task, config, target, origin, session)
    environment = environment or Environment(python=config.python)
    store.append_event(run_id, "queued", {
        "kind": task.kind, "target": target, "origin": origin, "config": config.model_dump(mode="json"),
        "environment": {**environment.model_dump(), "description": environment.describe()},
        **({"prompt": prompt} if prompt is not None else {})})
    return run_id


def cancel(store: RunStore, run_id: str) -> bool:
    """False if the run had ended. A queued run ends at once; a running one at its driver's next node boundary
    (wherever it runs), which then writes its `done`."""
    if store.finish(run_id, "cancelled", reason=CANCELLED, allowed=("queued",)):
        store.append_event(run_id, "done", {"status": "cancelled", "stop_reason": CANCELLED})
        return True
    return store.finish(run_id, "cancelled", reason=CANCELLED, allowed=("running",))


class Driven(NamedTuple):
    """How a drive ended: the run's status ('running' when it was stopped to resume later) and its outcome."""

    status: RunStatus
    outcome: RepairOutcome | None


def drive(store: RunStore, run_id: str, *, pool: sandbox.Pool | None = None,
          stopping: Callable[[], bool] = lambda: False, on_event: Callable[[Event], None] | None = None) -> Driven:
    """Runs (or resumes, from its last checkpoint) a queued or running run to its end, or until `stopping()` says
    so (a server shutting down: the run stays 'running' and resumes on the next start). `pool`: a shared sandbox
    pool (left open); None opens one for the run from its config. `on_event` sees every event this drive appends,
    on the driving thread. Infrastructure failures end the run as 'error' and are raised."""
    log = _EventLog(store, run_id, on_event)
    if not store.mark_running(run_id):
        return Driven(store.status(run_id) or "error", None)  # cancelled while queued, or ended
    try:
        return _drive(store, run_id, pool, stopping, log)
    finally:
        store.forget(run_id)


def _drive(store: RunStore, run_id: str, pool: sandbox.Pool | None, stopping: Callable[[], bool],
           log: _EventLog) -> Driven:
    try:
        values, finished, isolation = _stream(store, run_id, pool, stopping, log)
    except KeyboardInterrupt:  # Ctrl-C: the run ends cancelled; its checkpoint stays, to resume by name
        if store.finish(run_id, "cancelled", reason=INTERRUPTED):
            log.append("done", {"status": "cancelled", "stop_reason": INTERRUPTED})
        raise
    except Exception as exc:
        fail(store, run_id, exc, log)
        raise
    task = load_task(values, store.snapshots) if values else None
    outcome = outcome_of(values, task, isolation) if task is not None else None
    if store.status(run_id) == "cancelled":
        _report_cancel(store, values, log)
        return Driven("cancelled", outcome)
    if not finished:
        return Driven("running", outcome)
    assert outcome is not None
    progress = progress_of(values, store.snapshots)
    if store.finish(run_id, outcome["status"], progress):
        log.append("done", {"status": outcome["status"], **progress.model_dump()})
        return Driven(outcome["status"], outcome)
    status = store.status(run_id) or "error"  # it ended meanwhile: a cancel won the race with the last node (its
    if status == "cancelled":  # `done` is this driver's to write), or a replica that took the run over ended it
        _report_cancel(store, values, log)
    return Driven(status, outcome)


async def follow(driving: Callable[[Callable[[Event], None]], Driven],
                 on_event: Callable[[Event], Awaitable[None]]) -> Driven:
    """For an asyncio front end (ACP, MCP): runs `driving(report)` (a drive, given its `on_event`) on a worker thread
    and awaits `on_event` for each event it appends, in order, on the caller's loop. Cancelling the caller leaves the
    thread to its run: cancel the run too (`cancel`), and it stops at its next node."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    driven = asyncio.ensure_future(asyncio.to_thread(
        driving, lambda event: loop.call_soon_threadsafe(queue.put_nowait, event)))
    while True:
        getting = asyncio.ensure_future(queue.get())
        await asyncio.wait({getting, driven}, return_when=asyncio.FIRST_COMPLETED)
        if not getting.done():
            getting.cancel()
            break
        await on_event(getting.result())
    while not queue.empty():  # what the drive appended before it returned
        await on_event(queue.get_nowait())
    return await driven


def fail(store: RunStore, run_id: str, exc: BaseException, log: _EventLog | None = None) -> None:
    """Ends an unfinished run as 'error' for an infrastructure failure (once; a cancelled run stays cancelled)."""
    reason = f"{type(exc).__name__}: {exc}" if not str(exc).startswith(type(exc).__name__) else str(exc)
    progress = Progress(iterations=0, executions=0, tests_passed=0, tests_total=0, diff="", stop_reason=reason)
    if store.finish(run_id, "error", reason=reason):
        (log or _EventLog(store, run_id, None)).append("done", {"status": "error", **progress.model_dump()})


def _stream(store: RunStore, run_id: str, pool: sandbox.Pool | None, stopping: Callable[[], bool],
            log: _EventLog) -> tuple[dict[str, Any], bool, dict[str, Any]]:
    task, config = store.inputs(run_id)
    with contextlib.ExitStack() as stack:
        deps = stack.enter_context(open_deps(config, store.snapshots, pool=pool))
        isolation = deps.isolation
        store.record_isolation(run_id, isolation)
        graph = build_graph(deps, store.checkpointer)
        values = dict(graph.get_state(thread_config(run_id)).values)
        log.copy(values, None, task)  # entries a crash saved but did not report
        log.append("started", {"resumed": bool(values), "iteration": values.get("iteration", 0),
                               "isolation": isolation})
        inputs = None if values else initial_state(run_id, task, config, store.snapshots)
        for update in graph.stream(inputs, thread_config(run_id), stream_mode="updates", durability="sync"):
            values = dict(graph.get_state(thread_config(run_id)).values)
            log.copy(values, next(iter(update), None), task)
            store.record_progress(run_id, progress_of(values, store.snapshots))
            if stopping() or store.status(run_id) == "cancelled":
                break
        finished = not graph.get_state(thread_config(run_id)).next
    return values, finished, isolation


def _report_cancel(store: RunStore, values: dict[str, Any], log: _EventLog) -> None:
    progress = progress_of(values, store.snapshots) if values else None
    if progress is not None:
        store.record_progress(log.run_id, progress)
    known = progress.model_dump() if progress else {}
    log.append("done", {**known, "status": "cancelled", "stop_reason": CANCELLED})


class _EventLog:
    """Appends a run's events; one `node` event per checkpointed history entry not yet in the log."""

    def __init__(self, store: RunStore, run_id: str, on_event: Callable[[Event], None] | None) -> None:
        self._store = store
        self.run_id = run_id
        self._on_event = on_event
        self._copied: int | None = None

    def append(self, kind: EventType, data: dict[str, Any]) -> Event:
        event = self._store.append_event(self.run_id, kind, data)
        if self._on_event is not None:
            self._on_event(event)
        return event

    def copy(self, values: Mapping[str, Any], node: str | None, task: Task) -> None:
        """`node`: the node whose update `values` follows (its entries get the step's detail); None on resume."""
        if self._copied is None:
            self._copied = self._store.count_events(self.run_id, "node")
        best = Attempt(**values["best"]) if values.get("best") else None
        for entry in (values.get("history") or [])[self._copied:]:
            data = dict(entry)
            if best is not None:
                data["best"] = {"passed": best.passed, "total": best.total}
            if node is not None and entry.get("node") == node:
                data["detail"] = step_detail(node, values, task)
            self.append("node", data)
            self._copied += 1


def step_detail(node: str, values: Mapping[str, Any], task: Task) -> dict[str, Any]:
    """What a viewer shows of a step, from the state right after it: the failing call and its trace (trace), the
    model's answers (reason), each candidate's diff from the original (patch)."""
    if node == "trace" and values.get("focus"):
        focus = values["focus"]
        return {"test": focus["test_id"], "file": focus["file"], "function": focus.get("function"),
                "call": focus.get("call"), "expected": focus.get("expected"),
                "test_block": _capped(focus.get("test_block", "")),
                "trace": _capped(focus.get("trace") or focus.get("shown_trace") or ""),
                "suspects": [{k: s[k] for k in ("file", "line", "score", "function")}
                             for s in (values.get("suspects") or [])[:5]]}
    if node == "reason":
        return {"answers": [_capped(c.get("text", "")) for c in values.get("completions") or []]}
    if node == "patch":
        return {"candidates": [{"origin": c["origin"], "files": sorted(c["files"]),
                                "diff": _capped(unified_diff(task, c["files"])),
                                # the new text of each file, for viewers that show a diff of their own (an editor's)
                                **({"texts": c["files"]} if all(len(t) <= DETAIL_CAP for t in c["files"].values())
                                   else {})}
                               for c in values.get("candidates") or []]}
    return {}


def _capped(text: str) -> str:
    if len(text) <= DETAIL_CAP:
        return text
    return text[:DETAIL_CAP] + f"\n[... {len(text) - DETAIL_CAP} more characters cut; the run's checkpoint has all]\n"
