"""A run's row names its task by the snapshot's sha256; a server refuses a run whose snapshot was changed."""

from __future__ import annotations

import hashlib
import os

import pytest
from api_helpers import GRADE_TESTS, GRADES, Server, wait_for

from agent.persistence import SnapshotError, canonical_json, open_store
from agent.state import RunConfig
from agent.tasks import Task

POSTGRES_URL = os.environ.get("SEMCODER_TEST_POSTGRES_URL")
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="set SEMCODER_TEST_POSTGRES_URL=postgresql://... to run"))]


@pytest.mark.parametrize("database", DATABASES)
def test_a_tampered_snapshot_ends_its_run_with_a_clear_error(tmp_path, database):
    url = POSTGRES_URL if database == "postgres" else f"sqlite:///{tmp_path / 'runs.sqlite'}"
    task = Task(kind="function", files={"solution.py": GRADES, "test_solution.py": GRADE_TESTS},
                editable=["solution.py"], test_paths=["test_solution.py"], root=str(tmp_path), entry_point="grade")
    with open_store(url) as db:
        book = db
        run_id = book.create(task, RunConfig(max_iterations=2), "grade", "http")
        [(digest,)] = db.fetch("SELECT task FROM semcoder_api_runs WHERE run_id = ?", (run_id,))
        assert digest == hashlib.sha256(canonical_json(task).encode()).hexdigest()
        assert book.inputs(run_id) == (task, RunConfig(max_iterations=2))
        db.execute("UPDATE semcoder_snapshots SET task = replace(task, '90', '99') WHERE sha256 = ?", (digest,))
    with open_store(url) as db, pytest.raises(SnapshotError, match="does not match its hash"):
        db.inputs(run_id)
    server = Server(tmp_path / "runs.sqlite", db_url=url).start()  # picks up the queued run
    try:
        with server.client() as client:
            final = wait_for(client, run_id, {"fixed", "not_fixed", "error"})
    finally:
        server.stop()
    assert final["status"] == "error" and "does not match its hash" in final["stop_reason"], final


@pytest.mark.parametrize("database", DATABASES)
def test_a_runs_model_is_read_from_its_config_for_every_listing(tmp_path, database):
    """The runs list's model column comes from the one place the model is stored (the run's config)."""
    url = POSTGRES_URL if database == "postgres" else f"sqlite:///{tmp_path / 'runs.sqlite'}"
    task = Task(kind="function", files={"solution.py": GRADES, "test_solution.py": GRADE_TESTS},
                editable=["solution.py"], test_paths=["test_solution.py"], root=str(tmp_path), entry_point="grade")
    with open_store(url) as db:
        with_model = db.create(task, RunConfig(model="openai:semcoder-6.7b", patcher="both"), "grade", "cli")
        without = db.create(task, RunConfig(), "grade", "cli")
        assert db.get(with_model).model == "openai:semcoder-6.7b"
        assert db.get(without).model == "none"
        listed = {row.run_id: row.model for row in db.list()}
        assert listed[with_model] == "openai:semcoder-6.7b" and listed[without] == "none"
