"""One database for the LangGraph checkpointer and the server's own tables: SQLite or Postgres.

The server's SQL is written once with `?` placeholders and portable types; the Postgres side rewrites the
placeholders. SQLite reuses agent/persistence's setup (one connection, the checkpointer's lock).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver

from agent.persistence import RunStore, Sql, TaskSnapshots


class Database(Sql, Protocol):
    checkpointer: BaseCheckpointSaver
    snapshots: TaskSnapshots


class PostgresDatabase:
    def __init__(self, pool: Any) -> None:
        from langgraph.checkpoint.postgres import PostgresSaver

        self._pool = pool
        self.checkpointer = PostgresSaver(pool)
        self.checkpointer.setup()
        self.snapshots = TaskSnapshots(self)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._pool.connection() as connection:
            return connection.execute(_pg(sql), tuple(params)).rowcount

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._pool.connection() as connection:
            return [tuple(row.values()) for row in connection.execute(_pg(sql), tuple(params)).fetchall()]


def _pg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


@contextlib.contextmanager
def open_database(url: str) -> Iterator[Database]:
    """sqlite:///PATH or postgresql://...; a clear error for anything else."""
    if url.startswith(("postgres://", "postgresql://")):
        yield from _open_postgres(url)
    elif url.startswith("sqlite:///"):
        # SQLAlchemy's convention: sqlite:///relative.sqlite, sqlite:////absolute/path.sqlite
        yield from _open_sqlite(Path(url.removeprefix("sqlite:///")))
    else:
        raise ValueError(f"SEMCODER_DB_URL {url!r} must start with sqlite:/// or postgresql://")


def _open_sqlite(path: Path) -> Iterator[Database]:
    path.parent.mkdir(parents=True, exist_ok=True)
    # check_same_thread=False: runs write checkpoints from worker threads; every use holds the lock.
    with contextlib.closing(sqlite3.connect(str(path), check_same_thread=False, timeout=30)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        yield RunStore(connection)  # the same checkpointer, lock and snapshots as `semcoder repair`


def _open_postgres(url: str) -> Iterator[Database]:
    try:
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool
    except ImportError as exc:
        raise ValueError(f"a postgres SEMCODER_DB_URL needs the 'postgres' extra "
                         f"(pip install 'semcoder-agent[postgres]'): {exc}") from exc
    # The checkpointer needs autocommit and dict rows (see langgraph-checkpoint-postgres).
    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    with ConnectionPool(url, kwargs=kwargs, min_size=1, max_size=8, open=True) as pool:
        yield PostgresDatabase(pool)
