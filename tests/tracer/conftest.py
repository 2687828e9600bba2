"""Helpers for the tracer tests: run the in-sandbox child directly (any interpreter) and load CRUXEval."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox._trace_model import Trace
from sandbox.tracer import TraceOptions, TraceRow, _parse_results, _to_trace

ROOT = Path(__file__).resolve().parents[2]
CHILD = ROOT / "sandbox" / "_tracer_child.py"
CRUXEVAL = ROOT / "tests" / "data" / "cruxeval.jsonl"
PYTHON312 = Path("/root/.pyenv/versions/3.12.1/bin/python3")


def run_child(rows: list[TraceRow], workdir: Path, options: TraceOptions | None = None,
              python: str = sys.executable) -> list[Trace]:
    """The child exactly as the sandbox runs it, but in a plain subprocess (for other interpreters)."""
    options = options or TraceOptions()
    shutil.copy(CHILD, workdir / "_semcoder_tracer_child.py")
    request = {
        "nonce": "n0nce",
        "options": options.model_dump(exclude={"memory_mb"}),
        "rows": [{"code": r.code, "call": r.call, "filename": f"<semcoder-trace-{i}>"} for i, r in enumerate(rows)],
    }
    (workdir / "trace_request.json").write_text(json.dumps(request), encoding="utf-8")
    launcher = "import sys; sys.path.insert(0, '.'); import _semcoder_tracer_child as c; c.main()"
    done = subprocess.run([python, "-c", launcher], cwd=workdir, capture_output=True, text=True, timeout=600)
    ready, results = _parse_results(done.stdout, "n0nce")
    assert ready and len(results) == len(rows), done.stderr[-3000:]
    return [_to_trace(item, row) for item, row in zip(results, rows, strict=True)]


def cruxeval_rows() -> list[dict]:
    with CRUXEVAL.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture
def child(tmp_path: Path):
    def run(code: str, call: str, options: TraceOptions | None = None, python: str = sys.executable) -> Trace:
        return run_child([TraceRow(code=code, call=call)], tmp_path, options, python)[0]

    return run
