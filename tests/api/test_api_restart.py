"""`kill -9` of the server mid-run, then a restart: the run completes, nothing lost, nothing done twice."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from api_helpers import AUTH, Server, grade_request, read_events, wait_for

from agent.graph import build_graph, thread_config
from agent.persistence import open_store


@pytest.mark.slow
def test_a_run_survives_kill_9_of_the_server(tmp_path):
    db = tmp_path / "runs.sqlite"
    first = Server(db).start()
    try:
        with first.client() as client:
            # One mutant per step: the fix takes many steps, so the kill lands mid-run.
            run_id = client.post("/v1/repairs", json=grade_request(mutants_per_step=1, max_iterations=60),
                                 headers=AUTH).json()["id"]
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                seen = client.get(f"/v1/repairs/{run_id}", headers=AUTH).json()
                if seen["executions"] >= 3 or seen["status"] not in ("queued", "running"):
                    break
                time.sleep(0.05)
        assert seen["status"] == "running", f"the run ended before the kill: {seen}"
    finally:
        first.kill()
    with open_store(db) as database:
        killed = dict(build_graph(None, database.checkpointer).get_state(thread_config(run_id)).values)
    assert killed["status"] == "running" and killed["executions"] >= 3

    second = Server(db, port=first.port).start()
    try:
        with second.client() as client:
            final = wait_for(client, run_id, {"fixed", "not_fixed", "error", "cancelled"}, timeout_s=180)
            events = read_events(client, run_id)
    finally:
        second.stop()
    assert (final["status"], final["tests_passed"]) == ("fixed", 4), final
    with open_store(db) as database:
        state = dict(build_graph(None, database.checkpointer).get_state(thread_config(run_id)).values)
    # The history before the kill is intact and nothing ran twice.
    assert state["history"][: len(killed["history"])] == killed["history"]
    assert state["executions"] == len(state["tried"]) == len(set(state["tried"])) == final["executions"]
    assert max(Counter((h["node"], h["iteration"]) for h in state["history"]).values()) == 1
    # The event log mirrors the checkpointed history once, across both server lives.
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    # (each node event adds the best attempt's counts and what a viewer shows of the step)
    assert [{k: v for k, v in e["data"].items() if k not in ("best", "detail")} for e in events
            if e["type"] == "node"] == state["history"]
    started = [e["data"]["resumed"] for e in events if e["type"] == "started"]
    assert started == [False, True] and [e["type"] for e in events].count("done") == 1
