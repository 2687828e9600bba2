"""Helpers for the tracer tests: run the in-sandbox child directly (any interpreter) and load CRUXEval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox._models import ExecResult, Status
from sandbox._trace_model import Trace
from sandbox.job import JobResult, read, to_request
from sandbox.tracer import TraceOptions, TraceRow, read_traces, tracer_job

ROOT = Path(__file__).resolve().parents[2]
CRUXEVAL = ROOT / "tests" / "data" / "cruxeval.jsonl"
PYTHON312 = Path("/root/.pyenv/versions/3.12.1/bin/python3")
# Interpreters with sys.monitoring, where the tracer has two engines to compare.
MONITORING_PYTHONS = [p for p in (PYTHON312, *sorted(Path("/root/.pyenv/versions").glob("3.13.*/bin/python3")))
                      if p.exists()]


def run_child(rows: list[TraceRow], workdir: Path, options: TraceOptions | None = None,
              python: str = sys.executable) -> list[Trace]:
    """The tracer's job exactly as the sandbox runs it, but in a plain subprocess (for other interpreters)."""
    traces, failed = read_traces(run_child_job(rows, workdir, options, python), rows)
    assert failed is None and len(traces) == len(rows), failed
    return traces


def run_child_job(rows: list[TraceRow], workdir: Path, options: TraceOptions | None = None,
                  python: str = sys.executable, hash_seed: str | None = None) -> JobResult:
    """run_child's job result, before its records become traces; `hash_seed` fixes PYTHONHASHSEED (set order)."""
    filenames = [f"<semcoder-trace-{i}>" for i in range(len(rows))]
    request, key = to_request(tracer_job(rows, options or TraceOptions(), filenames))
    for name, content in request.files.items():
        target = workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)  # the tracer's bytecode goes in __pycache__/
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    (workdir / "job.py").write_text(request.code, encoding="utf-8")
    env = None if hash_seed is None else {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([python, "job.py"], cwd=workdir, capture_output=True, text=True, timeout=600, env=env)
    execution = ExecResult(status=Status.ok if done.returncode == 0 else Status.error, exit_code=done.returncode,
                           stdout=done.stdout, stderr=done.stderr, duration_s=0.0, isolation="partial")
    result = read(execution, key)
    assert result.ok, done.stderr[-3000:]
    return result


def cruxeval_rows() -> list[dict]:
    with CRUXEVAL.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture
def child(tmp_path: Path):
    def run(code: str, call: str, options: TraceOptions | None = None, python: str = sys.executable) -> Trace:
        return run_child([TraceRow(code=code, call=call)], tmp_path, options, python)[0]

    return run
