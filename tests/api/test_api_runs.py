"""Runs through the live API: a full repair with the mutation patcher, its SSE stream and replay, cancel."""

from __future__ import annotations

import json
import time

import pytest
from api_helpers import AUTH, GRADE_FIX, ROOT, grade_request, read_events, wait_for

from agent.api import ApiSettings, create_app
from agent.serve_cli import openapi_text


@pytest.fixture(scope="module")
def fixed_run(server):
    """One grades repair run to its end, with the events a live SSE client saw."""
    with server.client() as client:
        accepted = client.post("/v1/repairs", json=grade_request(), headers=AUTH)
        assert accepted.status_code == 202, accepted.text
        return accepted.json(), read_events(client, accepted.json()["id"])


def test_a_function_level_repair_end_to_end(server, fixed_run):
    run, events = fixed_run
    assert run["status"] in ("queued", "running") and run["events_url"] == f"/v1/repairs/{run['id']}/events"
    with server.client() as client:
        final = client.get(f"/v1/repairs/{run['id']}", headers=AUTH).json()
        listed = client.get("/v1/repairs", params={"status": "fixed", "limit": 1000}, headers=AUTH).json()
    assert (final["status"], final["tests_passed"], final["tests_total"]) == ("fixed", 4, 4)
    assert f"+{GRADE_FIX}" in final["diff"] and final["stop_reason"] == "all 4 tests pass (confirmed: 4 by the plugin-free runner)"
    assert run["id"] in [r["id"] for r in listed["repairs"]]

    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["queued", "started"] and kinds[-1] == "done" and kinds.count("done") == 1
    nodes = [e["data"]["node"] for e in events if e["type"] == "node"]
    assert nodes[0] == "execute" and nodes[-1] == "finish" and {"trace", "patch"} <= set(nodes)
    assert events[-1]["data"]["status"] == "fixed" and events[-1]["data"]["diff"] == final["diff"]
    assert final["executions"] == sum(len(e["data"]["tested"]) for e in events if e["data"].get("node") == "execute")


def test_events_replay_from_the_start_and_resume_after_last_event_id(server, fixed_run):
    run, live = fixed_run
    with server.client() as client:
        again = read_events(client, run["id"])
        tail = read_events(client, run["id"], last_event_id=3)
        by_query = client.get(f"/v1/repairs/{run['id']}/events", params={"after": len(live) - 1}, headers=AUTH)
    assert again == live and tail == live[3:]
    assert by_query.text.count("event: ") == 1 and "event: done" in by_query.text


def test_cancel_stops_a_running_run_and_a_second_cancel_conflicts(server):
    slow = grade_request(mutants_per_step=1, max_iterations=60)  # one mutant per step: many steps
    with server.client() as client:
        run_id = client.post("/v1/repairs", json=slow, headers=AUTH).json()["id"]
        wait_for(client, run_id, {"running"})
        cancelled = client.post(f"/v1/repairs/{run_id}/cancel", headers=AUTH)
        assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
        events = read_events(client, run_id)
        again = client.post(f"/v1/repairs/{run_id}/cancel", headers=AUTH)
        before = client.get(f"/v1/repairs/{run_id}", headers=AUTH).json()
        time.sleep(1.5)
        after = client.get(f"/v1/repairs/{run_id}", headers=AUTH).json()
    assert again.status_code == 409
    assert events[-1]["type"] == "done" and events[-1]["data"]["status"] == "cancelled"
    assert [e["type"] for e in events].count("done") == 1
    assert before["status"] == after["status"] == "cancelled"
    assert before["executions"] == after["executions"] < 60  # no work after the cancel took effect


def test_the_committed_openapi_document_is_current(tmp_path):
    app = create_app(ApiSettings(db_url=f"sqlite:///{tmp_path}/unused.sqlite"))
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert json.loads(committed) == json.loads(openapi_text(app)), \
        "docs/openapi.json is stale: semcoder serve --print-openapi > docs/openapi.json"
