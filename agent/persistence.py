"""Where runs live: LangGraph's SQLite checkpointer (one thread per run), a small table of runs, and the runs'
task snapshots.

The database sits in the user's cache dir (or wherever --db points), never inside the project.

A task (every file of a project) is stored once, content-addressed by the sha256 of its canonical JSON; the
graph's state holds only that hash. The checkpointer writes the whole state at every step, so a snapshot in
the state would be written again at every step (megabytes for a real project).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel

from agent.tasks import Task, TaskError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS semcoder_runs (
    run_id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL, target TEXT NOT NULL,
    kind TEXT NOT NULL, status TEXT NOT NULL, iterations INTEGER NOT NULL DEFAULT 0,
    tests_passed INTEGER NOT NULL DEFAULT 0, tests_total INTEGER NOT NULL DEFAULT 0,
    stop_reason TEXT NOT NULL DEFAULT ''
)"""
# Portable SQL (SQLite and Postgres): the API's database holds this table too.
_SNAPSHOTS = """CREATE TABLE IF NOT EXISTS semcoder_snapshots (
    sha256 TEXT PRIMARY KEY, task TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)"""


class SnapshotError(TaskError):
    """A run's task snapshot is missing from its database or does not match its hash."""


class Sql(Protocol):
    """Statements with `?` placeholders, each in its own transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Returns the rows it changed."""

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def canonical_json(task: Task) -> str:
    """The serialization a snapshot's hash is of: sorted keys, no spaces, ASCII (a lone surrogate stays valid)."""
    return json.dumps(task.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TaskSnapshots:
    """Tasks by the sha256 of their canonical JSON, in the run database; a loaded one is checked against its hash.

    The last few tasks stay parsed in memory: every node of a run reads its task, and a project's is megabytes.
    """

    def __init__(self, db: Sql, cache_size: int = 4) -> None:
        self._db = db
        db.execute(_SNAPSHOTS)
        self._cache: OrderedDict[str, Task] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def put(self, task: Task) -> str:
        """Stores `task` unless a snapshot of the same content is there; returns its sha256."""
        text = canonical_json(task)
        digest = _sha256(text)
        with self._lock:
            known = digest in self._cache  # stored or read by this process: no second upload of megabytes
        if not known:
            self._db.execute("INSERT INTO semcoder_snapshots (sha256, task, created) VALUES (?, ?, ?) "
                             "ON CONFLICT (sha256) DO NOTHING", (digest, text, time.time()))
        self._remember(digest, task)
        return digest

    def get(self, digest: str) -> Task:
        with self._lock:
            if digest in self._cache:
                self._cache.move_to_end(digest)
                return self._cache[digest]
        rows = self._db.fetch("SELECT task FROM semcoder_snapshots WHERE sha256 = ?", (digest,))
        if not rows:
            # (cut: an API run row from before snapshots holds the task itself where its hash is now)
            raise SnapshotError(f"the run's task snapshot {digest[:64]} is not in this database")
        text = rows[0][0]
        if _sha256(text) != digest:
            raise SnapshotError(f"the run's task snapshot {digest} does not match its hash (the database was "
                                "changed or damaged): refusing to use it")
        task = Task.model_validate(json.loads(text))  # (pydantic's JSON parser refuses a lone surrogate)
        self._remember(digest, task)
        return task

    def _remember(self, digest: str, task: Task) -> None:
        with self._lock:
            self._cache[digest] = task
            self._cache.move_to_end(digest)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


def load_task(state: Mapping[str, Any], snapshots: TaskSnapshots) -> Task:
    """The run's task: the one way to it from a state (which holds only its hash)."""
    digest = state.get("task_sha256")
    if not digest:
        raise SnapshotError(f"run {state.get('run_id', '?')}'s checkpoint names no task snapshot (a run saved by an "
                            "older semcoder, or no run at all)")
    return snapshots.get(digest)


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
    """The checkpointer for the graph, the runs table and the task snapshots, on one SQLite connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self.checkpointer = SqliteSaver(connection)
        self.execute(_SCHEMA)
        self.snapshots = TaskSnapshots(self)

    @classmethod
    def in_memory(cls) -> RunStore:
        """A store for a graph run without a database file (tests, benchmarks)."""
        return cls(sqlite3.connect(":memory:", check_same_thread=False))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.checkpointer.lock, self._connection:
            return self._connection.execute(sql, tuple(params)).rowcount

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.checkpointer.lock:
            return self._connection.execute(sql, tuple(params)).fetchall()

    def record_start(self, run_id: str, target: str, kind: str) -> None:
        now = time.time()
        self.execute("INSERT OR IGNORE INTO semcoder_runs (run_id, created, updated, target, kind, status) "
                     "VALUES (?, ?, ?, ?, ?, 'running')", (run_id, now, now, target, kind))

    def record_outcome(self, run_id: str, *, status: str, iterations: int, tests_passed: int, tests_total: int,
                       stop_reason: str) -> None:
        self.execute("UPDATE semcoder_runs SET updated=?, status=?, iterations=?, tests_passed=?, tests_total=?, "
                     "stop_reason=? WHERE run_id=?",
                     (time.time(), status, iterations, tests_passed, tests_total, stop_reason, run_id))

    def runs(self, limit: int = 50) -> list[RunRecord]:
        rows = self.fetch(f"SELECT {', '.join(RunRecord.model_fields)} FROM semcoder_runs ORDER BY created DESC "
                          "LIMIT ?", (limit,))
        return [RunRecord(**dict(zip(RunRecord.model_fields, row, strict=True))) for row in rows]

    def find(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.runs(limit=1_000_000) if r.run_id == run_id), None)


@contextlib.contextmanager
def open_store(path: Path | None = None) -> Iterator[RunStore]:
    path = path or default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: LangGraph writes checkpoints from worker threads; SqliteSaver locks.
    with contextlib.closing(sqlite3.connect(str(path), check_same_thread=False)) as connection:
        yield RunStore(connection)
