"""The task snapshot is stored once per run, content-addressed; checkpoints hold only its hash.

Real SQLite (and Postgres with SEMCODER_TEST_POSTGRES_URL), real runs of the graph in the sandbox.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from agent_helpers import GRADE_TESTS, GRADES, write
from click.testing import CliRunner

from agent.persistence import RunStore, SnapshotError, TaskSnapshots, canonical_json, load_task, open_store
from agent.repair_cli import repair_command
from agent.state import RunConfig
from agent.tasks import Task, TaskError, project_task

POSTGRES_URL = os.environ.get("SEMCODER_TEST_POSTGRES_URL")
CALC = {"calc/__init__.py": "", "calc/core.py": "def add(a, b):\n    return a - b\n",
        "tests/test_core.py": "from calc.core import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
                              "def test_zero():\n    assert add(0, 0) == 0\n"}


def task_of(**files: str) -> Task:
    return Task(kind="project", files={"m.py": "x = 1\n", **files}, editable=["m.py"], data={"a.bin": "AAE="},
                notes=["n\u00e9"])


def test_a_snapshot_is_stored_once_and_read_back_by_its_hash_in_another_connection(tmp_path):
    task = task_of()
    with open_store(tmp_path / "runs.sqlite") as store:
        digest = store.snapshots.put(task)
        assert store.snapshots.put(task.model_copy()) == digest  # same content, same row
    assert digest == hashlib.sha256(canonical_json(task).encode()).hexdigest()
    with open_store(tmp_path / "runs.sqlite") as store:  # a fresh process sees only the database
        assert store.fetch("SELECT COUNT(*) FROM semcoder_snapshots") == [(1,)]
        assert store.snapshots.get(digest) == task
        assert load_task({"run_id": "r", "task_sha256": digest}, store.snapshots) == task


def test_a_changed_or_missing_snapshot_is_refused(tmp_path):
    task = task_of()
    with open_store(tmp_path / "runs.sqlite") as store:
        digest = store.snapshots.put(task)
        store.execute("UPDATE semcoder_snapshots SET task = replace(task, 'x = 1', 'x = 2')")
    with open_store(tmp_path / "runs.sqlite") as store:
        with pytest.raises(SnapshotError, match="does not match its hash"):
            store.snapshots.get(digest)
        with pytest.raises(SnapshotError, match="not in this database"):
            store.snapshots.get("0" * 64)
        with pytest.raises(SnapshotError, match="names no task snapshot"):
            load_task({"run_id": "r"}, store.snapshots)
    assert issubclass(SnapshotError, TaskError)  # the CLI's and the API's error boundaries catch it


@pytest.mark.skipif(not POSTGRES_URL, reason="set SEMCODER_TEST_POSTGRES_URL=postgresql://... to run")
def test_snapshots_on_postgres():
    task = task_of(**{f"big_{uuid.uuid4().hex}.py": "y = '\u00e9\x00\ud800'\n" * 1000})
    with open_store(POSTGRES_URL) as database:
        digest = database.snapshots.put(task)
        assert database.snapshots.put(task) == digest
    with open_store(POSTGRES_URL) as database:
        assert TaskSnapshots(database).get(digest) == task  # no cache: read from the table
        database.execute("UPDATE semcoder_snapshots SET task = replace(task, 'x = 1', 'x = 3') WHERE sha256 = ?",
                         (digest,))
        with pytest.raises(SnapshotError, match="does not match its hash"):
            TaskSnapshots(database).get(digest)
        database.execute("DELETE FROM semcoder_snapshots WHERE sha256 = ?", (digest,))


def _project(root: Path, filler_bytes: int) -> Task:
    write(root, CALC)
    line = "def helper(value):\n    return value * 2\n\n\n"
    for index in range(max(1, filler_bytes // 20_000)):
        write(root, {f"pkg/mod_{index}.py": line * (20_000 // len(line))})
    return project_task(root)


def _bytes_per_step(store: RunStore, run_id: str) -> float:
    [(steps, checkpoints)] = store.fetch("SELECT COUNT(*), SUM(LENGTH(checkpoint) + LENGTH(metadata)) "
                                         "FROM checkpoints WHERE thread_id = ?", (run_id,))
    [(writes,)] = store.fetch("SELECT SUM(LENGTH(value)) FROM writes WHERE thread_id = ?", (run_id,))
    return (checkpoints + writes) / steps


@pytest.mark.slow
def test_checkpoint_rows_do_not_grow_with_the_project(tmp_path, run_graph):
    config = RunConfig(patcher="mutation", max_iterations=2, mutants_per_step=2)
    per_step, snapshot = {}, {}
    for name, size in (("small", 20_000), ("large", 2_000_000)):
        task = _project(tmp_path / name, size)
        with open_store(tmp_path / f"{name}.sqlite") as store:
            final = run_graph(task, config, store=store)
            assert final["status"] == "fixed" and "task" not in final
            [(snapshot[name],)] = store.fetch("SELECT LENGTH(task) FROM semcoder_snapshots")
            per_step[name] = _bytes_per_step(store, final["run_id"])
    assert snapshot["large"] > 2_000_000 > 50 * snapshot["small"]
    # Before, every checkpoint held the snapshot: the large run's steps were ~2 MB more each.
    assert abs(per_step["large"] - per_step["small"]) < snapshot["large"] / 100, (per_step, snapshot)


def test_a_run_resumes_by_its_hash_and_a_tampered_snapshot_is_refused(tmp_path):
    write(tmp_path, {"grades.py": GRADES, "test_grades.py": GRADE_TESTS})
    db = tmp_path / "runs.sqlite"
    common = ["--db", str(db), "--json"]
    first = CliRunner().invoke(repair_command, [str(tmp_path / "grades.py"), "--tests",
                                                str(tmp_path / "test_grades.py"), "--max-iterations", "1", *common])
    out = json.loads(first.stdout)
    assert out["status"] == "not_fixed", first.stderr  # one step is not enough for its two bugs
    with sqlite3.connect(db) as connection:
        [(stored,)] = connection.execute("SELECT task FROM semcoder_snapshots").fetchall()
        blobs = b"".join(row[0] for row in connection.execute("SELECT checkpoint FROM checkpoints"))
    assert GRADES.encode() not in blobs and json.loads(stored)["files"]["grades.py"] == GRADES

    again = CliRunner().invoke(repair_command, ["--resume", out["run_id"], *common])
    assert (again.exit_code, json.loads(again.stdout)) == (1, out)  # the same outcome, from the snapshot

    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE semcoder_snapshots SET task = replace(task, 'return', 'yield')")
    refused = CliRunner().invoke(repair_command, ["--resume", out["run_id"], *common])
    assert refused.exit_code == 2 and json.loads(refused.stdout)["status"] == "error"
    assert "does not match its hash" in refused.stderr and "Traceback" not in refused.stderr
