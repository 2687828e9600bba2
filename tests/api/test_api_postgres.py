"""The same server on Postgres (checkpointer and run tables). Needs a database: SEMCODER_TEST_POSTGRES_URL."""

from __future__ import annotations

import os

import pytest
from api_helpers import AUTH, Server, grade_request, read_events, wait_for

POSTGRES_URL = os.environ.get("SEMCODER_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES_URL, reason="set SEMCODER_TEST_POSTGRES_URL=postgresql://... to run")
def test_a_repair_on_postgres_survives_a_restart(tmp_path):
    first = Server(tmp_path / "unused.sqlite", db_url=POSTGRES_URL).start()
    try:
        with first.client() as client:
            run_id = client.post("/v1/repairs", json=grade_request(), headers=AUTH).json()["id"]
            final = wait_for(client, run_id, {"fixed", "not_fixed", "error"})
    finally:
        first.stop()
    assert (final["status"], final["tests_passed"]) == ("fixed", 4)
    second = Server(tmp_path / "unused.sqlite", db_url=POSTGRES_URL).start()
    try:
        with second.client() as client:
            again = client.get(f"/v1/repairs/{run_id}", headers=AUTH).json()
            events = read_events(client, run_id)
    finally:
        second.stop()
    assert again == final and events[-1]["type"] == "done" and events[-1]["data"]["diff"] == final["diff"]
