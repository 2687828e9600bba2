"""The whole loop driven by the real transformers backend on a tiny random-init checkpoint.

It cannot fix anything; it must sample, parse nothing useful, and stop cleanly at its budget.
"""

from __future__ import annotations

import json

import pytest
from agent_helpers import GRADE_TESTS, GRADES, write
from click.testing import CliRunner

from agent.graph import run_values
from agent.persistence import open_store
from agent.repair_cli import repair_command

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from training.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama")).path


@pytest.mark.slow
@pytest.mark.parametrize(("feedback", "dialect"), [("semcoder", "semcoder"), ("trace", "semcoder"), ("trace", "chat")])
def test_tiny_model_ends_cleanly_at_its_budget(tmp_path, tiny_checkpoint, monkeypatch, feedback, dialect):
    monkeypatch.setenv("SEMCODER_DEVICE", "cpu")
    write(tmp_path, {"grades.py": GRADES, "test_grades.py": GRADE_TESTS})
    db = tmp_path / "runs.sqlite"
    result = CliRunner().invoke(repair_command, [
        str(tmp_path / "grades.py"), "--tests", str(tmp_path / "test_grades.py"), "--db", str(db),
        "--model", f"transformers:{tiny_checkpoint}", "--patcher", "model", "--feedback", feedback, "--dialect", dialect,
        "--samples", "2", "--max-new-tokens", "24", "--max-iterations", "2", "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    out = json.loads(result.stdout)
    assert (result.exit_code, out["status"], out["iterations"], out["diff"]) == (1, "not_fixed", 2, "")
    with open_store(db) as store:
        state = run_values(store.checkpointer, out["run_id"])
    assert "iteration budget" in state["stop_reason"]
    reasons = [h for h in state["history"] if h["node"] == "reason"]
    assert len(reasons) == 2 and all(h["samples"] == 2 for h in reasons)
    assert state["tokens_used"] > 2 * 100  # two prompts of hundreds of tokens, counted by the backend
