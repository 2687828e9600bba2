"""Where runs live, for every front end (CLI, HTTP, ACP, MCP): LangGraph's checkpointer (one thread per run), a
table of runs with their inputs and outcome, each run's event log, and the runs' task snapshots. SQLite (the
default, in the user's cache dir, never inside the project) or Postgres; the SQL is written once with `?`
placeholders and portable types, and the Postgres side rewrites the placeholders.

A run started from any front end is visible to the others: `semcoder runs`, GET /v1/repairs, an editor's
session list and the MCP server's resources all read this one store.

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
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel, Field

from agent.repair_settings import RunSetup
from agent.state import RunConfig
from agent.tasks import Task, TaskError

RunStatus = Literal["queued", "running", "fixed", "not_fixed", "error", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"fixed", "not_fixed", "error", "cancelled"})
UNFINISHED: tuple[RunStatus, ...] = ("queued", "running")
Origin = Literal["cli", "http", "acp", "mcp"]
EventType = Literal["queued", "started", "node", "done"]

# The tables keep the names they had when only the server wrote them, so a database made before takes new runs.
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
# Columns later versions added (name -> SQL type and default), for a table an earlier version created. A row from
# before `origin` existed was made by the server. `owner` and `lease_until`: the server replica that holds a run
# and until when (Unix time), renewed by its heartbeat; a run whose lease ran out is free to be claimed.
_ADDED = {"setup": "TEXT NOT NULL DEFAULT '{}'", "isolation": "TEXT NOT NULL DEFAULT '{}'",
          "origin": "TEXT NOT NULL DEFAULT 'http'", "session": "TEXT NOT NULL DEFAULT ''",
          "owner": "TEXT NOT NULL DEFAULT ''", "lease_until": "DOUBLE PRECISION NOT NULL DEFAULT 0"}
_JSON_COLUMNS = ("setup", "isolation")
# The command line's table before there was one store: its rows move into the runs table once.
_LEGACY_CLI_TABLE = "semcoder_runs"
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


class RunRow(BaseModel):
    """A run as the store has it: what it repairs, where it was started from, and how far it got."""

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
    origin: Origin = Field(description="The front end that started the run: cli, http, acp or mcp.")
    session: str = Field("", description="The editor session (ACP) the run belongs to ('' for none).")
    owner: str = Field("", description="The server replica driving the run ('' when none holds it).")
    model: str = Field("none", description="The model proposing patches (BACKEND:NAME), or 'none' (mutations only).")


# Every field is a column except `model`, which is read out of the run's config (the one place it is stored).
_COLUMNS = tuple(RunRow.model_fields)
_SELECT = ", ".join("config" if name == "model" else name for name in _COLUMNS)


class Progress(BaseModel):
    iterations: int
    executions: int
    tests_passed: int
    tests_total: int
    diff: str
    stop_reason: str = ""


class Event(BaseModel):
    """One entry of a run's event log (and one Server-Sent Event): `id` counts up from 1 per run."""

    id: int
    type: EventType
    data: dict[str, Any]
    created: float


def default_db_path() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "semcoder" / "runs.sqlite"


DB_HELP = ("Run database, shared by every front end: a PATH to a SQLite file, sqlite:////ABS/PATH.sqlite or "
           "postgresql://user:pass@host/db (the 'postgres' extra). Default: $SEMCODER_DB_URL, else "
           "~/.cache/semcoder/runs.sqlite.")


def db_location(given: str | Path | None = None) -> str:
    """The one rule for where the run store is: the given PATH or URL, else $SEMCODER_DB_URL, else the cache."""
    chosen = given if given not in (None, "") else os.environ.get("SEMCODER_DB_URL") or default_db_path()
    text = str(chosen)
    return text if "://" in text else f"sqlite:///{Path(text).expanduser().resolve()}"


def db_option(command: Any) -> Any:
    """`--db PATH|URL`: the same option in every command that reads or writes runs (`--db-url` is its old name
    in `semcoder serve`)."""
    import click

    return click.option("--db", "--db-url", "db", default=None, metavar="PATH|URL", help=DB_HELP)(command)


class _Backing(Sql, Protocol):
    checkpointer: BaseCheckpointSaver

    def returning(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class _Sqlite:
    """One connection; every statement holds the checkpointer's lock (LangGraph writes from worker threads)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.checkpointer = SqliteSaver(connection)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.checkpointer.lock, self.connection:
            return self.connection.execute(sql, tuple(params)).rowcount

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.checkpointer.lock:
            return self.connection.execute(sql, tuple(params)).fetchall()

    def returning(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A statement that changes rows and returns some (RETURNING), committed."""
        with self.checkpointer.lock, self.connection:
            return self.connection.execute(sql, tuple(params)).fetchall()

    def script(self, statements: Sequence[str]) -> None:
        """Several statements in one transaction."""
        with self.checkpointer.lock, self.connection:
            for statement in statements:
                self.connection.execute(statement)


class _Postgres:
    def __init__(self, pool: Any) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver

        self._pool = pool
        self.checkpointer = PostgresSaver(pool)
        self.checkpointer.setup()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._pool.connection() as connection:
            return connection.execute(_pg(sql), tuple(params)).rowcount

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._pool.connection() as connection:
            return [tuple(row.values()) for row in connection.execute(_pg(sql), tuple(params)).fetchall()]

    returning = fetch  # (autocommit: a RETURNING statement is committed as it runs)


def _pg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class RunStore:
    """The checkpointer for the graph, the runs, their events and the task snapshots, on one database.

    Status changes out of queued/running are conditional, so a run ends exactly once (finish vs cancel races).
    """

    def __init__(self, backing: _Backing, kind: Literal["sqlite", "postgres"] = "sqlite") -> None:
        self._db = backing
        self.kind = kind
        self.checkpointer = backing.checkpointer
        self._latest: dict[str, int] = {}  # run -> newest event id this process wrote: lets SSE skip queries
        for statement in _SCHEMA:
            backing.execute(statement)
        for column, declaration in _ADDED.items():
            try:
                backing.execute(f"ALTER TABLE semcoder_api_runs ADD COLUMN {column} {declaration}")
            except Exception as exc:  # sqlite3.OperationalError / psycopg DuplicateColumn: it is there already
                if "duplicate" not in str(exc).lower() and "already exists" not in str(exc).lower():
                    raise
        if isinstance(backing, _Sqlite):
            _adopt_cli_table(backing)
        self.snapshots = TaskSnapshots(self)

    @classmethod
    def in_memory(cls) -> RunStore:
        """A store for a graph run without a database file (tests, benchmarks)."""
        return cls(_Sqlite(sqlite3.connect(":memory:", check_same_thread=False)))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, params)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.fetch(sql, params)

    # runs

    def create(self, task: Task, config: RunConfig, target: str, origin: Origin, session: str = "") -> str:
        """A queued run of `task` with `config`; returns its id."""
        run_id = uuid.uuid4().hex[:16]
        now = time.time()
        self.execute(
            "INSERT INTO semcoder_api_runs (run_id, created, updated, status, kind, target, task, config, setup, "
            "origin, session) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
            (run_id, now, now, task.kind, target, self.snapshots.put(task), config.model_dump_json(),
             RunSetup.of(task, config).model_dump_json(), origin, session))
        return run_id

    def record_isolation(self, run_id: str, isolation: dict[str, Any]) -> None:
        """The sandbox a run's tests got (its pool's isolation report), once it started."""
        self.execute("UPDATE semcoder_api_runs SET isolation = ? WHERE run_id = ?",
                     (json.dumps(isolation, default=str), run_id))

    def get(self, run_id: str) -> RunRow | None:
        rows = self.fetch(f"SELECT {_SELECT} FROM semcoder_api_runs WHERE run_id = ?", (run_id,))
        return _row(rows[0]) if rows else None

    def status(self, run_id: str) -> RunStatus | None:
        rows = self.fetch("SELECT status FROM semcoder_api_runs WHERE run_id = ?", (run_id,))
        return rows[0][0] if rows else None

    def list(self, limit: int = 50, status: RunStatus | None = None, session: str | None = None) -> list[RunRow]:
        """Newest first."""
        clauses = [(f"{name} = ?", value) for name, value in (("status", status), ("session", session))
                   if value is not None]
        where = f"WHERE {' AND '.join(c for c, _ in clauses)}" if clauses else ""
        rows = self.fetch(f"SELECT {_SELECT} FROM semcoder_api_runs {where} "
                          "ORDER BY created DESC, run_id LIMIT ?", (*(v for _, v in clauses), limit))
        return [_row(r) for r in rows]

    def unfinished(self, origin: Origin) -> list[str]:
        """The unfinished runs `origin` started, oldest first: the order a restarted server picks them up in."""
        rows = self.fetch("SELECT run_id FROM semcoder_api_runs WHERE status IN ('queued', 'running') AND origin = ? "
                          "ORDER BY created, run_id", (origin,))
        return [r[0] for r in rows]

    # leases: which server replica drives a run (agent/api/manager.py)

    def claim(self, origin: Origin, owner: str, lease_s: float) -> str | None:
        """Takes the oldest unfinished run of `origin` that nobody holds (no owner, or a lease run out) for `owner`,
        until now + lease_s; None when there is none. Atomic: two replicas never claim the same run (Postgres: a
        row lock skipped by the other claimer; SQLite: one writer at a time)."""
        now = time.time()
        lock = " FOR UPDATE SKIP LOCKED" if self.kind == "postgres" else ""
        rows = self._db.returning(
            "UPDATE semcoder_api_runs SET owner = ?, lease_until = ? WHERE run_id = (SELECT run_id FROM "
            "semcoder_api_runs WHERE origin = ? AND status IN ('queued', 'running') AND lease_until < ? "
            f"ORDER BY created, run_id LIMIT 1{lock}) RETURNING run_id", (owner, now + lease_s, origin, now))
        return rows[0][0] if rows else None

    def renew(self, owner: str, run_ids: Sequence[str], lease_s: float) -> set[str]:
        """Extends `owner`'s leases on these runs; returns the ones it still holds."""
        if not run_ids:
            return set()
        marks = ", ".join("?" for _ in run_ids)
        rows = self._db.returning(
            f"UPDATE semcoder_api_runs SET lease_until = ? WHERE owner = ? AND run_id IN ({marks}) RETURNING run_id",
            (time.time() + lease_s, owner, *run_ids))
        return {row[0] for row in rows}

    def release(self, owner: str, run_id: str) -> None:
        """Gives a run back: another replica may claim it at once (if it is unfinished)."""
        self.execute("UPDATE semcoder_api_runs SET owner = '', lease_until = 0 WHERE run_id = ? AND owner = ?",
                     (run_id, owner))

    def holds(self, owner: str, run_id: str) -> bool:
        return bool(self.fetch("SELECT 1 FROM semcoder_api_runs WHERE run_id = ? AND owner = ? AND lease_until >= ?",
                               (run_id, owner, time.time())))

    def forget(self, run_id: str) -> None:
        """This process stops writing the run's events (its drive ended): `may_have_events_after` asks the database
        from now on, since another process may write them next."""
        self._latest.pop(run_id, None)

    def count_unfinished(self, origin: Origin) -> int:
        return self.fetch("SELECT COUNT(*) FROM semcoder_api_runs WHERE status IN ('queued', 'running') "
                          "AND origin = ?", (origin,))[0][0]

    def inputs(self, run_id: str) -> tuple[Task, RunConfig]:
        """The run's task and config, as it was started."""
        rows = self.fetch("SELECT task, config FROM semcoder_api_runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise SnapshotError(f"no run {run_id!r} in this database")
        digest, config = rows[0]
        if not digest:
            raise SnapshotError(f"run {run_id} was recorded by an older semcoder without its task: it cannot be "
                                "rerun from the run store")
        return self.snapshots.get(digest), RunConfig.model_validate_json(config)

    def mark_running(self, run_id: str) -> bool:
        return self._transition(run_id, "running", UNFINISHED)

    def reopen(self, run_id: str) -> bool:
        """An ended run queued again: resuming it from its last checkpoint was asked for by name."""
        return self._transition(run_id, "queued", tuple(TERMINAL))

    def record_progress(self, run_id: str, progress: Progress) -> None:
        self.execute(
            "UPDATE semcoder_api_runs SET updated = ?, iterations = ?, executions = ?, tests_passed = ?, "
            "tests_total = ?, diff = ? WHERE run_id = ?",
            (time.time(), progress.iterations, progress.executions, progress.tests_passed, progress.tests_total,
             progress.diff, run_id))

    def finish(self, run_id: str, status: RunStatus, progress: Progress | None = None, reason: str = "",
               allowed: tuple[RunStatus, ...] = UNFINISHED) -> bool:
        """Ends an unfinished run (or one in `allowed`); False if it had already ended (then its status stays)."""
        if progress is not None:
            self.record_progress(run_id, progress)
        return self._transition(run_id, status, allowed, reason or (progress.stop_reason if progress else ""))

    def _transition(self, run_id: str, status: RunStatus, allowed: tuple[str, ...], reason: str = "") -> bool:
        marks = ", ".join("?" for _ in allowed)
        changed = self.execute(
            f"UPDATE semcoder_api_runs SET status = ?, updated = ?, stop_reason = CASE WHEN ? = '' THEN stop_reason "
            f"ELSE ? END WHERE run_id = ? AND status IN ({marks})",
            (status, time.time(), reason, reason, run_id, *allowed))
        return changed == 1

    # events

    def append_event(self, run_id: str, kind: EventType, data: dict[str, Any]) -> Event:
        """Appends with the next sequence number; the primary key turns a lost race into a retry instead of a
        duplicate id."""
        for _ in range(5):
            seq = self.last_event_id(run_id) + 1
            now = time.time()
            try:
                self.execute("INSERT INTO semcoder_api_events (run_id, seq, type, data, created) "
                             "VALUES (?, ?, ?, ?, ?)", (run_id, seq, kind, json.dumps(data), now))
                self._latest[run_id] = seq
                return Event(id=seq, type=kind, data=data, created=now)
            except Exception as exc:  # sqlite3.IntegrityError / psycopg UniqueViolation
                if "unique" not in str(exc).lower() and "primary" not in str(exc).lower():
                    raise
        raise RuntimeError(f"could not append an event to run {run_id}: sequence contention")

    def last_event_id(self, run_id: str) -> int:
        return self.fetch("SELECT COALESCE(MAX(seq), 0) FROM semcoder_api_events WHERE run_id = ?", (run_id,))[0][0]

    def may_have_events_after(self, run_id: str, seq: int) -> bool:
        """False only when this process knows there is nothing newer (it writes every event of the runs it drives,
        and other processes' runs are never in `_latest`)."""
        latest = self._latest.get(run_id)
        return latest is None or latest > seq

    def events_after(self, run_id: str, after: int, limit: int = 500) -> list[Event]:
        rows = self.fetch("SELECT seq, type, data, created FROM semcoder_api_events WHERE run_id = ? AND seq > ? "
                          "ORDER BY seq LIMIT ?", (run_id, after, limit))
        return [Event(id=seq, type=kind, data=json.loads(data), created=created) for seq, kind, data, created in rows]

    def count_events(self, run_id: str, kind: EventType) -> int:
        return self.fetch("SELECT COUNT(*) FROM semcoder_api_events WHERE run_id = ? AND type = ?",
                          (run_id, kind))[0][0]


def _row(values: tuple[Any, ...]) -> RunRow:
    row = dict(zip(_COLUMNS, values, strict=True))
    model = json.loads(row["model"] or "{}").get("model") or "none"
    return RunRow(**{**row, "model": model, **{column: json.loads(row[column] or "{}") for column in _JSON_COLUMNS}})


def _adopt_cli_table(db: _Sqlite) -> None:
    """Moves the rows of the command line's own runs table (before there was one store) into the runs table."""
    if not db.fetch("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_LEGACY_CLI_TABLE,)):
        return
    db.script([
        "INSERT INTO semcoder_api_runs (run_id, created, updated, status, kind, target, task, config, iterations, "
        "tests_passed, tests_total, stop_reason, origin) SELECT run_id, created, updated, status, kind, target, '', "
        f"'{{}}', iterations, tests_passed, tests_total, stop_reason, 'cli' FROM {_LEGACY_CLI_TABLE} "
        "WHERE run_id NOT IN (SELECT run_id FROM semcoder_api_runs)",
        f"DROP TABLE {_LEGACY_CLI_TABLE}"])


@contextlib.contextmanager
def open_store(location: str | Path | None = None) -> Iterator[RunStore]:
    """The run store at a PATH or URL (see `db_location`); a clear error for anything else."""
    url = db_location(location)
    if url.startswith(("postgres://", "postgresql://")):
        yield from _open_postgres(url)
    elif url.startswith("sqlite:///"):
        # SQLAlchemy's convention: sqlite:///relative.sqlite, sqlite:////absolute/path.sqlite
        yield from _open_sqlite(Path(url.removeprefix("sqlite:///")))
    else:
        raise TaskError(f"run database {url!r} must be a path, sqlite:///PATH or postgresql://...")


def _open_sqlite(path: Path) -> Iterator[RunStore]:
    path.parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: LangGraph writes checkpoints from worker threads; every use holds the lock.
    with contextlib.closing(sqlite3.connect(str(path), check_same_thread=False, timeout=30)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")  # readers in other processes (a server, an editor) never block
        yield RunStore(_Sqlite(connection))


def _open_postgres(url: str) -> Iterator[RunStore]:
    try:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool
    except ImportError as exc:
        raise TaskError(f"a postgres run database needs the 'postgres' extra "
                        f"(pip install 'semcoder-agent[postgres]'): {exc}") from exc
    # The checkpointer needs autocommit and dict rows (see langgraph-checkpoint-postgres).
    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    with ConnectionPool(url, kwargs=kwargs, min_size=1, max_size=8, open=True) as pool:
        yield RunStore(_Postgres(pool), kind="postgres")
