"""The server's tables beside the checkpointer: one row per run (its input, status and outcome) and its events.

A run's task is in the run store's snapshots (agent/persistence.py); its row's `task` holds the snapshot's
sha256 (the column keeps its name, which it had when it held the task itself, so a database made before still takes new runs).

Status changes out of queued/running are conditional, so a run ends exactly once (finish vs cancel races).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pydantic import BaseModel

from agent.api._db import Database
from agent.api.schemas import Event, RunStatus
from agent.repair_settings import RunSetup
from agent.state import RunConfig
from agent.tasks import Task

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS semcoder_api_runs (
        run_id TEXT PRIMARY KEY, created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, task TEXT NOT NULL, config TEXT NOT NULL,
        iterations INTEGER NOT NULL DEFAULT 0, executions INTEGER NOT NULL DEFAULT 0,
        tests_passed INTEGER NOT NULL DEFAULT 0, tests_total INTEGER NOT NULL DEFAULT 0,
        stop_reason TEXT NOT NULL DEFAULT '', diff TEXT NOT NULL DEFAULT '',
        setup TEXT NOT NULL DEFAULT '{}', isolation TEXT NOT NULL DEFAULT '{}')""",
    """CREATE TABLE IF NOT EXISTS semcoder_api_events (
        run_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL, PRIMARY KEY (run_id, seq))""",
)
# Columns later versions added, for a table an earlier server created (JSON objects).
_ADDED = ("setup", "isolation")
UNFINISHED: tuple[RunStatus, ...] = ("queued", "running")
_COLUMNS = ("run_id", "created", "updated", "status", "kind", "target", "iterations", "executions", "tests_passed",
            "tests_total", "stop_reason", "diff", *_ADDED)


class RunRow(BaseModel):
    run_id: str
    created: float
    updated: float
    status: RunStatus
    kind: str
    target: str
    iterations: int
    executions: int
    tests_passed: int
    tests_total: int
    stop_reason: str
    diff: str
    setup: RunSetup
    isolation: dict[str, Any]


class Progress(BaseModel):
    iterations: int
    executions: int
    tests_passed: int
    tests_total: int
    diff: str
    stop_reason: str = ""


class RunBook:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._latest: dict[str, int] = {}  # run -> newest event id this process wrote: lets SSE skip queries
        for statement in _SCHEMA:
            db.execute(statement)
        for column in _ADDED:
            try:
                db.execute(f"ALTER TABLE semcoder_api_runs ADD COLUMN {column} TEXT NOT NULL DEFAULT '{{}}'")
            except Exception as exc:  # sqlite3.OperationalError / psycopg DuplicateColumn: it is there already
                if "duplicate" not in str(exc).lower() and "already exists" not in str(exc).lower():
                    raise

    def create(self, task: Task, config: RunConfig, target: str) -> str:
        run_id = uuid.uuid4().hex[:16]
        now = time.time()
        self.db.execute(
            "INSERT INTO semcoder_api_runs (run_id, created, updated, status, kind, target, task, config, setup) "
            "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
            (run_id, now, now, task.kind, target, self.db.snapshots.put(task), config.model_dump_json(),
             RunSetup.of(task, config).model_dump_json()))
        return run_id

    def record_isolation(self, run_id: str, isolation: dict[str, Any]) -> None:
        """The sandbox a run's tests got (its pool's isolation report), once a worker opened it."""
        self.db.execute("UPDATE semcoder_api_runs SET isolation = ? WHERE run_id = ?",
                        (json.dumps(isolation, default=str), run_id))

    def get(self, run_id: str) -> RunRow | None:
        rows = self.db.fetch(f"SELECT {', '.join(_COLUMNS)} FROM semcoder_api_runs WHERE run_id = ?", (run_id,))
        return _row(rows[0]) if rows else None

    def list(self, limit: int, status: RunStatus | None = None) -> list[RunRow]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self.db.fetch(f"SELECT {', '.join(_COLUMNS)} FROM semcoder_api_runs {where} "
                             "ORDER BY created DESC, run_id LIMIT ?", (*params, limit))
        return [_row(r) for r in rows]

    def unfinished(self) -> list[str]:
        """Oldest first: the order a restarted server picks them up in."""
        rows = self.db.fetch("SELECT run_id FROM semcoder_api_runs WHERE status IN ('queued', 'running') "
                             "ORDER BY created, run_id")
        return [r[0] for r in rows]

    def count_unfinished(self) -> int:
        return self.db.fetch("SELECT COUNT(*) FROM semcoder_api_runs WHERE status IN ('queued', 'running')")[0][0]

    def inputs(self, run_id: str) -> tuple[Task, RunConfig]:
        digest, config = self.db.fetch("SELECT task, config FROM semcoder_api_runs WHERE run_id = ?",
                                       (run_id,))[0]
        return self.db.snapshots.get(digest), RunConfig.model_validate_json(config)

    def mark_running(self, run_id: str) -> bool:
        return self._transition(run_id, "running", ("queued", "running"))

    def record_progress(self, run_id: str, progress: Progress) -> None:
        self.db.execute(
            "UPDATE semcoder_api_runs SET updated = ?, iterations = ?, executions = ?, tests_passed = ?, "
            "tests_total = ?, diff = ? WHERE run_id = ?",
            (time.time(), progress.iterations, progress.executions, progress.tests_passed, progress.tests_total,
             progress.diff, run_id))

    def finish(self, run_id: str, status: RunStatus, progress: Progress | None = None, reason: str = "") -> bool:
        """Ends an unfinished run; False if it had already ended (then its status stays)."""
        if progress is not None:
            self.record_progress(run_id, progress)
        return self._transition(run_id, status, UNFINISHED, reason or (progress.stop_reason if progress else ""))

    def _transition(self, run_id: str, status: RunStatus, allowed: tuple[str, ...], reason: str = "") -> bool:
        marks = ", ".join("?" for _ in allowed)
        changed = self.db.execute(
            f"UPDATE semcoder_api_runs SET status = ?, updated = ?, stop_reason = CASE WHEN ? = '' THEN stop_reason "
            f"ELSE ? END WHERE run_id = ? AND status IN ({marks})",
            (status, time.time(), reason, reason, run_id, *allowed))
        return changed == 1

    # events

    def append_event(self, run_id: str, kind: str, data: dict[str, Any]) -> int:
        """Appends with the next sequence number; only the run's own worker (or a cancel) writes, and the
        primary key turns a lost race into a retry instead of a duplicate id."""
        for _ in range(5):
            seq = self.last_event_id(run_id) + 1
            try:
                self.db.execute("INSERT INTO semcoder_api_events (run_id, seq, type, data, created) "
                                "VALUES (?, ?, ?, ?, ?)", (run_id, seq, kind, json.dumps(data), time.time()))
                self._latest[run_id] = seq
                return seq
            except Exception as exc:  # sqlite3.IntegrityError / psycopg UniqueViolation
                if "unique" not in str(exc).lower() and "primary" not in str(exc).lower():
                    raise
        raise RuntimeError(f"could not append an event to run {run_id}: sequence contention")

    def last_event_id(self, run_id: str) -> int:
        return self.db.fetch("SELECT COALESCE(MAX(seq), 0) FROM semcoder_api_events WHERE run_id = ?",
                             (run_id,))[0][0]

    def may_have_events_after(self, run_id: str, seq: int) -> bool:
        """False only when this process knows there is nothing newer (it writes every event of its runs)."""
        latest = self._latest.get(run_id)
        return latest is None or latest > seq

    def events_after(self, run_id: str, after: int, limit: int = 500) -> list[Event]:
        rows = self.db.fetch("SELECT seq, type, data, created FROM semcoder_api_events WHERE run_id = ? AND seq > ? "
                             "ORDER BY seq LIMIT ?", (run_id, after, limit))
        return [Event(id=seq, type=kind, data=json.loads(data), created=created) for seq, kind, data, created in rows]

    def count_events(self, run_id: str, kind: str) -> int:
        return self.db.fetch("SELECT COUNT(*) FROM semcoder_api_events WHERE run_id = ? AND type = ?",
                             (run_id, kind))[0][0]


def _row(values: tuple[Any, ...]) -> RunRow:
    row = dict(zip(_COLUMNS, values, strict=True))
    return RunRow(**{**row, **{column: json.loads(row[column] or "{}") for column in _ADDED}})
