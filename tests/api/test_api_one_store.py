"""One run store for every front end: a run `semcoder repair` started is listed, streamed and cancelled through
the HTTP API of a server on the same database, and a restarted server never takes it over."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from api_helpers import AUTH, GRADES, ROOT, Server, read_events

CLI_GRADE_TESTS = ("from grades import grade\n\n\ndef test_a():\n    assert grade(95) == 'A'\n\n\n"
                   "def test_a_boundary():\n    assert grade(90) == 'A'\n\n\ndef test_b_boundary():\n"
                   "    assert grade(80) == 'B'\n")


@pytest.mark.slow
def test_a_command_line_run_is_seen_and_cancelled_through_the_api(tmp_path):
    db = tmp_path / "runs.sqlite"
    (tmp_path / "grades.py").write_text(GRADES)
    (tmp_path / "test_grades.py").write_text(CLI_GRADE_TESTS)
    server = Server(db).start()
    # One mutant per step: the fix takes many steps, so the cancel lands mid-run.
    cli = subprocess.Popen([sys.executable, "-c", "from agent.cli import main; main()", "repair",
                            str(tmp_path / "grades.py"), "--tests", str(tmp_path / "test_grades.py"), "--db", str(db),
                            "--mutants-per-step", "1", "--max-iterations", "60", "--json"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with server.client() as client:
            deadline, seen = time.monotonic() + 120, None
            while time.monotonic() < deadline and cli.poll() is None:
                listed = client.get("/v1/repairs", headers=AUTH).json()["repairs"]
                seen = next((r for r in listed if r["origin"] == "cli"), None)
                if seen is not None and seen["executions"] >= 2:
                    break
                time.sleep(0.1)
            assert seen is not None and seen["status"] == "running", (seen, cli.poll())
            assert seen["target"] == str(tmp_path / "grades.py") and seen["kind"] == "function"
            cancelled = client.post(f"/v1/repairs/{seen['id']}/cancel", headers=AUTH)
            assert cancelled.status_code == 202, cancelled.text
            out, err = cli.communicate(timeout=120)
            events = read_events(client, seen["id"])
            final = client.get(f"/v1/repairs/{seen['id']}", headers=AUTH).json()
        server.stop()
        restarted = Server(db, port=server.port).start()  # takes over no other front end's runs
        with restarted.client() as client:
            assert client.get("/health").json()["queued"] == 0
            assert client.get(f"/v1/repairs/{seen['id']}", headers=AUTH).json()["status"] == "cancelled"
        restarted.stop()
    finally:
        server.kill()
        if cli.poll() is None:
            cli.kill()
    outcome = json.loads(out)
    assert (cli.returncode, outcome["status"], outcome["run_id"]) == (1, "cancelled", seen["id"]), err
    assert (final["status"], final["stop_reason"], final["origin"]) == ("cancelled", "cancelled by request", "cli")
    types = [e["type"] for e in events]
    assert types[:2] == ["queued", "started"] and types.count("done") == 1 and types[-1] == "done"
    assert events[-1]["data"]["status"] == "cancelled"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
