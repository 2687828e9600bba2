"""A run killed with SIGKILL resumes from its last checkpoint: nothing is redone, nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from agent_helpers import GRADE_TESTS, GRADES, ROOT, SEMCODER, write

from agent.graph import run_values
from agent.persistence import open_store


def checkpoints(db: Path) -> tuple[str | None, int]:
    if not db.exists():
        return None, 0
    with sqlite3.connect(db) as connection:
        try:
            row = connection.execute("SELECT run_id FROM semcoder_api_runs").fetchone()
            count = connection.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet
            return None, 0
    return (row[0] if row else None), count


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path):
    write(tmp_path, {"grades.py": GRADES, "test_grades.py": GRADE_TESTS})
    db = tmp_path / "runs.sqlite"
    args = [str(tmp_path / "grades.py"), "--tests", str(tmp_path / "test_grades.py"), "--db", str(db)]
    # One mutant per step: the fix takes many steps, so the kill lands mid-run.
    first = subprocess.Popen([*SEMCODER, "repair", *args, "--mutants-per-step", "1", "--max-iterations", "40",
                              "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    deadline = time.monotonic() + 120
    run_id, count = None, 0
    while count < 6 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
        run_id, count = checkpoints(db)
    assert first.poll() is None, f"the run ended before it could be killed: {first.communicate()}"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert run_id is not None and count >= 6
    with open_store(db) as store:
        killed = run_values(store.checkpointer, run_id)
        assert store.get(run_id).status == "running"
        # The checkpoint names the task by its hash; the next process reads it from the snapshot table.
        assert store.snapshots.get(killed["task_sha256"]).files["grades.py"] == GRADES and "task" not in killed
    assert killed["status"] == "running" and killed["executions"] >= 2

    resumed = subprocess.run([*SEMCODER, "repair", "--resume", run_id, "--db", str(db), "--json"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    out = json.loads(resumed.stdout)
    assert (resumed.returncode, out["status"], out["run_id"], out["tests_passed"]) == (0, "fixed", run_id, 4), \
        resumed.stderr
    with open_store(db) as store:
        final = run_values(store.checkpointer, run_id)
        assert store.get(run_id).status == "fixed"
    # The history before the kill is intact and nothing ran twice: one baseline, each candidate tested once,
    # one execute and one patch per iteration.
    assert final["history"][: len(killed["history"])] == killed["history"]
    assert [h["origin"] for h in final["history"][0]["tested"]] == ["original"]
    assert final["executions"] == len(final["tried"]) == len(set(final["tried"]))
    assert final["executions"] == sum(len(h["tested"]) for h in final["history"] if h["node"] == "execute")
    per_iteration = Counter((h["node"], h["iteration"]) for h in final["history"])
    assert max(per_iteration.values()) == 1
    assert not list((tmp_path).glob("*.orig")) and (tmp_path / "grades.py").read_text() == GRADES
