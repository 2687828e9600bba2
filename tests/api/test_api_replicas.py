"""Two `semcoder serve` replicas on one Postgres: they share the queue through leases; `kill -9` of one mid-run
hands its runs to the other, which resumes them from their last checkpoint. Every run ends exactly once, its events
are complete and in order, and the checkpointer's history shows nothing ran twice.

Needs a Postgres: SEMCODER_TEST_POSTGRES_URL (CI starts a throwaway one with scripts/pg_throwaway.sh; so can you).
Each test gets a fresh database on it."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from api_helpers import AUTH, Server, grade_request, read_events

from agent.graph import run_values
from agent.persistence import TERMINAL, open_store

POSTGRES_URL = os.environ.get("SEMCODER_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="set SEMCODER_TEST_POSTGRES_URL=postgresql://... to run "
                                "(bash scripts/pg_throwaway.sh starts one)")
RUNS, LONG = 20, 4  # of which LONG take many steps (one mutant per step), so the kill lands mid-run
LEASE_S = 6


@pytest.fixture
def database() -> Iterator[str]:
    import psycopg

    assert POSTGRES_URL is not None
    name = f"semcoder_replicas_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base, _, _ = POSTGRES_URL.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def held_by(url: str, replica: str) -> list[tuple[str, int]]:
    """(run, executions) of the unfinished runs `replica` holds."""
    with open_store(url) as store:
        return [(r.run_id, r.executions) for r in store.list(limit=1000) if r.owner == replica
                and r.status == "running"]


@pytest.mark.slow
def test_two_replicas_share_the_runs_and_a_killed_one_loses_none(tmp_path, database):
    env = {"SEMCODER_LEASE_S": str(LEASE_S), "SEMCODER_MAX_CONCURRENT_RUNS": "2"}
    first = Server(tmp_path / "a.sqlite", db_url=database, env=env).start()
    second = Server(tmp_path / "b.sqlite", db_url=database, env=env).start()
    try:
        replicas = [httpx.get(f"{s.url}/health").json()["replica"] for s in (first, second)]
        assert replicas[0] != replicas[1]
        accepted = []
        with first.client() as one, second.client() as two:
            for index in range(RUNS):  # alternately through each replica; any replica may run any of them
                body = grade_request(mutants_per_step=1, max_iterations=60) if index < LONG else grade_request()
                reply = (one if index % 2 else two).post("/v1/repairs", json=body, headers=AUTH)
                assert reply.status_code == 202, reply.text
                accepted.append(reply.json()["id"])
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            holding = held_by(database, replicas[0])
            if any(executions >= 2 for _, executions in holding):
                break
            time.sleep(0.2)
        assert holding, "the first replica never held a run mid-way"
        first.kill()  # SIGKILL: no shutdown, no lease given back
        killed_at = time.time()
        killed = [run_id for run_id, _ in holding]
        with second.client() as client:
            deadline, finals = time.monotonic() + 900, {}
            while time.monotonic() < deadline and len(finals) < RUNS:
                for run_id in accepted:
                    body = client.get(f"/v1/repairs/{run_id}", headers=AUTH).json()
                    if body["status"] in TERMINAL:
                        finals[run_id] = body
                time.sleep(1)
            assert len(finals) == RUNS, f"{RUNS - len(finals)} run(s) never ended"
            events = {run_id: read_events(client, run_id) for run_id in accepted}
    finally:
        first.kill()
        second.stop()

    assert {f["status"] for f in finals.values()} == {"fixed"}
    takeover = []
    with open_store(database) as store:
        for run_id in accepted:
            kinds = [e["type"] for e in events[run_id]]
            assert [e["id"] for e in events[run_id]] == list(range(1, len(kinds) + 1)), run_id  # complete, in order
            assert kinds[0] == "queued" and kinds.count("done") == 1 and kinds[-1] == "done", (run_id, kinds)
            state = run_values(store.checkpointer, run_id)
            # nothing ran twice: each step once in the checkpointed history, each candidate tested once
            assert max(Counter((h["node"], h["iteration"]) for h in state["history"]).values()) == 1, run_id
            assert state["executions"] == len(state["tried"]) == len(set(state["tried"])), run_id
            nodes = [e["data"]["node"] for e in events[run_id] if e["type"] == "node"]
            assert nodes == [h["node"] for h in state["history"]], run_id  # the log mirrors the history once
            resumed = [e["data"]["resumed"] for e in events[run_id] if e["type"] == "started"]
            if run_id in killed:  # started on the first replica, resumed on the second from its checkpoint
                assert resumed[0] is False and resumed[-1] is True, (run_id, resumed)
                restart = [e.created for e in store.events_after(run_id, 0) if e.type == "started"][-1]
                takeover.append(round(restart - killed_at, 1))
            assert store.get(run_id).owner == ""  # given back when it ended
    print(f"\n{RUNS} runs over 2 replicas; the killed replica held {len(killed)} mid-run; each resumed on the other "
          f"{takeover} s after the kill (lease {LEASE_S} s); every run fixed, one `done` each, no step twice")
