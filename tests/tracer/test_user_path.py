"""The tracer's user path gives the traces the per-call path gives: trace-batch's JSON lines, and both engines.

`semcoder trace-batch` builds each line from the child's compact record (sandbox.tracer._json_line) instead of
Trace models and render_json; on Python 3.12+ the child takes events through sys.monitoring instead of
sys.settrace. Neither may change a trace.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import MONITORING_PYTHONS, cruxeval_rows, run_child_job

from sandbox.trace_render import render_json
from sandbox.tracer import (
    INTERFERENCE_MESSAGE,
    TraceOptions,
    TraceRow,
    _json_line,
    _read_records,
    read_traces,
    trace_batch_json,
)
from sandbox.tracer_cli import trace_batch_command, trace_command

# Rows whose traces show what the other tests rarely do: a name that goes away, a generator's activations,
# exceptions caught and escaping, non-ASCII and control characters, a recursive function, a one-line loop
# (3.12+ inlines the comprehension), a lambda, a class body's method.
EDGE_ROWS = [
    TraceRow(code="def f(x):\n    y = x * 2\n    del x\n    z = [y] * 3\n    return z\n", call="f(4)"),
    TraceRow(code="def g(n):\n    for i in range(n):\n        yield i * i\n\ndef f(n):\n    return sum(g(n))\n",
             call="f(4)"),
    TraceRow(code="def f(s):\n    try:\n        int(s)\n    except ValueError as e:\n        s = 'caught'\n"
                  "    return 1 / 0\n", call="f('x')"),
    TraceRow(code="def f(s):\n    t = s + '\\u00e9\\u4e2d\\n\\t\"\\\\'\n    return t\n", call="f('ü')"),
    TraceRow(code="def f(n):\n    return 1 if n <= 1 else n * f(n - 1)\n", call="f(5)"),
    TraceRow(code="def f(xs):\n    t = 0\n    for x in xs: t += x\n    return [x * 2 for x in xs if x], t\n",
             call="f([1, 0, 3])"),
    TraceRow(code="def f(xs):\n    return sorted(xs, key=lambda v: -v)\n", call="f([3, 1, 2])"),
    TraceRow(code="class A:\n    def __init__(self, v):\n        self.v = v\n    def m(self):\n        return self.v\n\n"
                  "def f():\n    return A(3).m()\n", call="f()"),
]


def _normalized(text: str) -> str:
    """Object addresses differ between processes; nothing else may."""
    return re.sub(r"0x[0-9a-f]+", "0x", text)


@pytest.fixture(scope="module")
def cruxeval() -> list[TraceRow]:
    return [TraceRow(code=r["code"], call=f"f({r['input']})") for r in cruxeval_rows()]


def test_batch_lines_are_render_json_of_the_traces_byte_for_byte(tmp_path: Path, cruxeval: list[TraceRow]) -> None:
    # One job's records read both ways: the same records, so even addresses and set orders agree.
    rows = cruxeval + EDGE_ROWS
    result = run_child_job(rows, tmp_path)
    lines, failed = _read_records(result, rows, _json_line)
    traces, failed_too = read_traces(result, rows)
    assert failed is None and failed_too is None
    assert lines == [render_json(trace) for trace in traces]
    # Caps: a truncated trace, and one cut by the byte cap.
    for options in (TraceOptions(max_events=5), TraceOptions(max_bytes=200)):
        (tmp_path / str(options.max_events)).mkdir()
        result = run_child_job(EDGE_ROWS, tmp_path / str(options.max_events), options)
        lines = _read_records(result, EDGE_ROWS, _json_line)[0]
        assert lines == [render_json(trace) for trace in read_traces(result, EDGE_ROWS)[0]]
        assert any(json.loads(line)["truncated"] for line in lines)


def test_batch_lines_of_death_and_interference_items_are_render_json_of_theirs() -> None:
    from sandbox.tracer import _death_item, _interference_item, _to_trace

    row = EDGE_ROWS[0]
    assert _json_line(_interference_item(), row) == render_json(_to_trace(_interference_item(), row))
    assert json.loads(_json_line(_interference_item(), row))["exception"] == INTERFERENCE_MESSAGE
    from sandbox._models import ExecResult, Status

    death = _death_item(ExecResult(status=Status.error, exit_code=3, stdout="", stderr="", duration_s=0.0,
                                   isolation="partial"))
    assert _json_line(death, row) == render_json(_to_trace(death, row))


@pytest.mark.parametrize(
    "item",
    [
        {"events": [["line", "2", {}, 0]]},  # a line number that is no int
        {"events": [["jump", 2, {}, 0]]},  # no such event kind
        {"events": [["line", 2, {"x": 1}, 0]]},  # a repr that is no string
        {"events": [["line", 2, {}, 1]]},  # an activation that does not exist
        {"events": [["line", 2, {}, 0, "x", None]]},  # removed names that are no list
        {"frames": [["f", "1"]]},
        {"return_repr": 42},
        {"truncated": "no"},
        {"output": None},
    ],
)
def test_a_record_that_is_not_a_trace_is_refused(item: dict) -> None:
    record = {"return_repr": "1", "exception": None, "events": [["call", 1, {}, 0]], "frames": [["f", 1]],
              "truncated": False, "output": "", **item}
    with pytest.raises((TypeError, ValueError)):
        _json_line(record, EDGE_ROWS[0])


# Every 50th CRUXEval row, with 401 for 400: that trace shows a map object's address, which differs per process.
SAMPLE = [0, 50, 100, 150, 200, 250, 300, 350, 401, 450, 500, 550, 600, 650, 700, 750]


def test_trace_batch_prints_what_semcoder_trace_prints_row_by_row(tmp_path: Path,
                                                                   cruxeval: list[TraceRow]) -> None:
    rows = [cruxeval[index] for index in SAMPLE] + EDGE_ROWS
    batch_file = tmp_path / "rows.jsonl"
    batch_file.write_text("".join(row.model_dump_json() + "\n" for row in rows), encoding="utf-8")
    batch = CliRunner().invoke(trace_batch_command, [str(batch_file), "--json"])
    assert batch.exit_code == 0, batch.output
    batch_lines = batch.stdout.splitlines()
    assert len(batch_lines) == len(rows)
    for index, (row, line) in enumerate(zip(rows, batch_lines, strict=True)):
        program = tmp_path / f"program_{index}.py"
        program.write_text(row.code, encoding="utf-8")
        single = CliRunner().invoke(trace_command, [str(program), "--call", row.call])
        assert single.exit_code == 0, single.output
        assert _normalized(line) == _normalized(single.stdout.rstrip("\n")), index


def test_trace_batch_json_is_trace_batch_rendered_also_past_a_dying_row() -> None:
    rows = [EDGE_ROWS[0], TraceRow(code="import os\ndef f():\n    os._exit(3)\n", call="f()"), EDGE_ROWS[4]]
    lines = list(trace_batch_json(rows))
    assert [json.loads(line)["exception"] for line in lines] == [
        None, "SystemExit: the process ended (exit code 3) before the call returned", None]
    assert json.loads(lines[2])["return_repr"] == "120"


@pytest.mark.skipif(not MONITORING_PYTHONS, reason="no Python 3.12+ installed")
@pytest.mark.parametrize("python", MONITORING_PYTHONS, ids=lambda path: path.parent.parent.name)
def test_sys_monitoring_and_settrace_give_the_same_traces(tmp_path: Path, python: Path,
                                                           cruxeval: list[TraceRow]) -> None:
    # One hash seed for both children, so a set of strings has one order; addresses still differ.
    rows = cruxeval + EDGE_ROWS
    lines = {}
    for engine in ("monitoring", "settrace"):
        (tmp_path / engine).mkdir()
        result = run_child_job(rows, tmp_path / engine, TraceOptions(engine=engine), str(python), hash_seed="0")
        lines[engine], failed = _read_records(result, rows, _json_line)
        assert failed is None
    differing = [index for index, (a, b) in enumerate(zip(lines["monitoring"], lines["settrace"], strict=True))
                 if _normalized(a) != _normalized(b)]
    assert not differing
    # The one-line loop of EDGE_ROWS[5] shows each iteration, as 3.11's tracer does.
    loop = json.loads(lines["monitoring"][len(cruxeval) + 5])
    assert [e["line"] for e in loop["events"]].count(3) == 4


@pytest.mark.skipif(not MONITORING_PYTHONS, reason="no Python 3.12+ installed")
def test_trace_batch_runs_the_traced_child_on_the_python_asked_for(tmp_path: Path) -> None:
    batch_file = tmp_path / "rows.jsonl"
    code = "import sys\ndef f():\n    v = sys.version_info[:2]\n    return v\n"
    batch_file.write_text(TraceRow(code=code, call="f()").model_dump_json() + "\n", encoding="utf-8")
    python = MONITORING_PYTHONS[0]
    result = CliRunner().invoke(trace_batch_command, [str(batch_file), "--python", str(python)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["return_repr"] == repr(tuple(int(part) for part in python.parent.parent.name.split(".")[:2]))
    assert [e["event"] for e in out["events"]] == ["call", "line", "line", "return"]


def test_states_only_leaves_the_json_lines_as_they_were(tmp_path: Path, cruxeval: list[TraceRow]) -> None:
    # trace_batch_json asks the child for the states only; the lines must not change. One hash seed for both.
    rows = cruxeval + EDGE_ROWS
    lines = {}
    for states_only in (False, True):
        (tmp_path / str(states_only)).mkdir()
        result = run_child_job(rows, tmp_path / str(states_only), TraceOptions(states_only=states_only),
                               hash_seed="0")
        lines[states_only] = [_normalized(line) for line in _read_records(result, rows, _json_line)[0]]
        traces = read_traces(result, rows)[0]
        values = [e.value for t in traces for e in t.events if e.depth > 1 or e.event == "exception"]
        assert any(values) != states_only  # what states_only leaves out is there otherwise
    assert lines[True] == lines[False]
