"""trace_call, trace_batch and the CLI through the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from sandbox.tracer import TraceOptions, TraceRow, trace_batch, trace_call
from sandbox.tracer_cli import trace_batch_command, trace_command

PROGRAM = """\
def f(nums):
    total = 0
    for n in nums:
        total += n
    print("total", total)
    return total

if __name__ == "__main__":
    print("main block ran")
"""


def test_trace_call_runs_in_the_sandbox() -> None:
    trace = trace_call(PROGRAM, "f([1, 2])")
    assert trace.return_repr == "3"
    assert trace.output == "total 3\n"
    assert [(e.event, e.line) for e in trace.events][:3] == [("call", 1), ("line", 2), ("line", 3)]
    assert trace.events[-1].locals == {"nums": "[1, 2]", "total": "3", "n": "2"}


def test_trace_call_reports_exceptions_and_truncation() -> None:
    assert trace_call(PROGRAM, "f(None)").exception == "TypeError: 'NoneType' object is not iterable"
    loop = "def f():\n    i = 0\n    while i < 10**6:\n        i += 1\n    return i\n"
    trace = trace_call(loop, "f()", options=TraceOptions(max_events=1000))
    assert trace.truncated and len(trace.events) == 1000 and trace.return_repr == "1000000"


def test_batch_keeps_order_and_survives_a_dying_process() -> None:
    rows = [
        TraceRow(code="def f():\n    return 1\n", call="f()"),
        TraceRow(code="import os\ndef f():\n    os._exit(4)\n", call="f()"),
        TraceRow(code="def f():\n    return 'after'\n", call="f()"),
    ]
    traces = trace_batch(rows)
    assert [t.return_repr for t in traces] == ["1", None, "'after'"]
    assert traces[1].exception == "SystemExit: the process ended (exit code 4) before the call returned"


def test_cli_json_is_one_object_and_program_output_goes_to_stderr(tmp_path: Path) -> None:
    file = tmp_path / "prog.py"
    file.write_text(PROGRAM, encoding="utf-8")
    result = CliRunner().invoke(trace_command, [str(file), "--call", "f([4, 5])"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload) == {"return_repr", "exception", "events", "truncated"}
    assert set(payload["events"][0]) == {"event", "func", "line", "locals"}
    assert payload["return_repr"] == "9" and not payload["truncated"]
    assert "total 9" in result.stderr and "main block ran" not in result.stderr + result.stdout


def test_cli_exit_code_is_zero_when_the_call_raises(tmp_path: Path) -> None:
    file = tmp_path / "prog.py"
    file.write_text(PROGRAM, encoding="utf-8")
    result = CliRunner().invoke(trace_command, [str(file), "--call", "f(1)", "--max-events", "2"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["exception"] == "TypeError: 'int' object is not iterable"
    assert len(payload["events"]) == 2 and payload["truncated"]


def test_cli_renders_every_format(tmp_path: Path) -> None:
    file = tmp_path / "prog.py"
    file.write_text(PROGRAM, encoding="utf-8")
    outputs = {}
    for fmt in ("semcoder", "blocks", "monologue", "cwm"):
        result = CliRunner().invoke(trace_command, [str(file), "--call", "f([1])", "--format", fmt])
        assert result.exit_code == 0, result.output
        outputs[fmt] = result.stdout
    assert 'def f(nums): # [INPUT] {"nums": [1]} [/INPUT]' in outputs["semcoder"]
    assert "[OUTPUT] 1 [/OUTPUT]" in outputs["semcoder"]
    assert "[BLOCK-0] f" in outputs["blocks"]
    assert "returns `1`" in outputs["monologue"]
    assert outputs["cwm"].startswith("<|trace_context_start|>def f(nums):  # << START_OF_TRACE\n")
    assert outputs["cwm"].rstrip("\n").endswith('<|arg_sep|>"1"<|frame_sep|><|end_of_text|>')


def test_cli_batch_prints_one_line_per_input_line(tmp_path: Path) -> None:
    file = tmp_path / "rows.jsonl"
    lines = [
        json.dumps({"code": "def f(x):\n    return x * 2\n", "call": "f(21)"}),
        "{not json",
        json.dumps({"code": "def f(:\n", "call": "f()"}),
        json.dumps({"code": "def f():\n    while True:\n        pass\n", "call": "f()"}),
    ]
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(trace_batch_command, [str(file), "--json", "--timeout", "0.5"])
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 4
    assert out[0]["return_repr"] == "42"
    assert out[1]["exception"].startswith("ValueError: line 2 is not")
    assert out[2]["exception"].startswith("SyntaxError")
    assert out[3]["exception"] == "TimeoutError: the call did not finish within its time limit"
