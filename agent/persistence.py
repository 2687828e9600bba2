"""Where runs live: LangGraph's SQLite checkpointer (one thread per run) and a small table of runs.

The database sits in the user's cache dir (or wherever --db points), never inside the project.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel

_SCHEMA = """
CREATE TABLE IF NOT EXISTS semcoder_runs (
    run_id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL, target TEXT NOT NULL,
    kind TEXT NOT NULL, status TEXT NOT NULL, iterations INTEGER NOT NULL DEFAULT 0,
    tests_passed INTEGER NOT NULL DEFAULT 0, tests_total INTEGER NOT NULL DEFAULT 0,
    stop_reason TEXT NOT NULL DEFAULT ''
)"""


class RunRecord(BaseModel):
    run_id: str
    created: float
    updated: float
    target: str
    kind: str
    status: str
    iterations: int
    tests_passed: int
    tests_total: int
    stop_reason: str


def default_db_path() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "semcoder" / "runs.sqlite"


class RunStore:
    """The checkpointer for the graph plus the runs table, on one SQLite connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.checkpointer = SqliteSaver(connection)
        with self.checkpointer.lock, connection:
            connection.execute(_SCHEMA)

    def record_start(self, run_id: str, target: str, kind: str) -> None:
        now = time.time()
        with self.checkpointer.lock, self._connection:
            self._connection.execute(
                "INSERT OR IGNORE INTO semcoder_runs (run_id, created, updated, target, kind, status) "
                "VALUES (?, ?, ?, ?, ?, 'running')", (run_id, now, now, target, kind))

    def record_outcome(self, run_id: str, *, status: str, iterations: int, tests_passed: int, tests_total: int,
                       stop_reason: str) -> None:
        with self.checkpointer.lock, self._connection:
            self._connection.execute(
                "UPDATE semcoder_runs SET updated=?, status=?, iterations=?, tests_passed=?, tests_total=?, "
                "stop_reason=? WHERE run_id=?",
                (time.time(), status, iterations, tests_passed, tests_total, stop_reason, run_id))

    def runs(self, limit: int = 50) -> list[RunRecord]:
        with self.checkpointer.lock:
            cursor = self._connection.execute(
                f"SELECT {', '.join(RunRecord.model_fields)} FROM semcoder_runs ORDER BY created DESC LIMIT ?",
                (limit,))
            return [RunRecord(**dict(zip(RunRecord.model_fields, row, strict=True))) for row in cursor]

    def find(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.runs(limit=1_000_000) if r.run_id == run_id), None)


@contextlib.contextmanager
def open_store(path: Path | None = None) -> Iterator[RunStore]:
    path = path or default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: LangGraph writes checkpoints from worker threads; SqliteSaver locks.
    with contextlib.closing(sqlite3.connect(str(path), check_same_thread=False)) as connection:
        yield RunStore(connection)
