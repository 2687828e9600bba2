"""All 800 CRUXEval programs: traced == untraced == expected, through the real sandbox."""

from __future__ import annotations

import json

import pytest
from conftest import cruxeval_rows

from sandbox import ExecRequest, Limits, run
from sandbox.tracer import TraceRow, trace_batch

UNTRACED = """\
import json
rows = json.load(open("rows.json"))
out = []
for row in rows:
    namespace = {"__name__": "traced_program"}
    try:
        exec(row["code"], namespace)
        out.append(repr(eval(row["call"], namespace)))
    except BaseException as exc:
        out.append(f"{type(exc).__name__}: {exc}")
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def cruxeval() -> list[dict]:
    rows = cruxeval_rows()
    assert len(rows) == 800
    return rows


def test_every_traced_result_equals_the_untraced_and_expected_output(cruxeval: list[dict]) -> None:
    rows = [TraceRow(code=r["code"], call=f"f({r['input']})") for r in cruxeval]
    traces = trace_batch(rows)
    untraced = run(
        ExecRequest(
            code=UNTRACED,
            files={"rows.json": json.dumps([row.model_dump() for row in rows])},
            limits=Limits(wall_time_s=120, cpu_time_s=120),
        )
    )
    assert untraced.ok, untraced.stderr
    plain = json.loads(untraced.stdout)
    mismatches = []
    for record, trace, plain_repr in zip(cruxeval, traces, plain, strict=True):
        assert trace.exception is None, (record["id"], trace.exception)
        assert not trace.truncated
        same = eval(trace.return_repr) == eval(plain_repr) == eval(record["output"])
        if not same:
            mismatches.append((record["id"], trace.return_repr, plain_repr, record["output"]))
        assert trace.events[0].event == "call" and trace.events[-1].event == "return"
        assert trace.events[-1].value == trace.return_repr
    assert not mismatches
