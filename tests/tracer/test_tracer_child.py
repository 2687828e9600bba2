"""The in-sandbox tracer, run directly as a subprocess (fast; also under Python 3.12 when present)."""

from __future__ import annotations

import re

import pytest
from conftest import PYTHON312, run_child

from sandbox._tracer_child import Alarm, SafeRepr
from sandbox.tracer import TraceOptions, TraceRow

NESTED = """\
def outer(xs):
    total = 0
    def add(v):
        nonlocal total
        total += v
    for x in sorted(xs, key=lambda v: -v):
        add(x)
    squares = [x * x for x in xs]
    return total, squares

class Box:
    def __init__(self, v):
        self.v = v
    def double(self):
        return self.v * 2

def gen(n):
    for i in range(n):
        yield i

def use(n):
    b = Box(n)
    return b.double() + sum(gen(n))
"""


def test_events_cover_every_frame_of_the_code_in_order(child) -> None:
    trace = child(NESTED, "outer([2, 1])")
    assert trace.return_repr == "(3, [4, 1])"
    funcs = {e.func for e in trace.events}
    assert {"outer", "outer.<locals>.add", "outer.<locals>.<lambda>"} <= funcs
    first = trace.events[0]
    assert (first.event, first.func, first.line, first.locals) == ("call", "outer", 1, {"xs": "[2, 1]"})
    lines = [e.line for e in trace.events if e.func == "outer" and e.event == "line"]
    assert lines[:3] == [2, 3, 6]
    # a line event comes before its line runs: `total = 0` is not yet visible at line 2
    line2 = next(e for e in trace.events if e.event == "line" and e.line == 2)
    assert "total" not in line2.locals
    # the closure's cell variable is a local of outer, updated by add()
    last = trace.events[-1]
    assert (last.event, last.locals["total"], last.value) == ("return", "3", "(3, [4, 1])")
    assert next(e.depth for e in trace.events if e.func == "outer.<locals>.add") == 2


def test_methods_and_generator_bodies_are_traced(child) -> None:
    trace = child(NESTED, "use(3)")
    assert trace.return_repr == "9"
    funcs = [e.func for e in trace.events if e.event == "call"]
    assert "Box.__init__" in funcs and "Box.double" in funcs
    assert funcs.count("gen") >= 3  # each resume of the generator is a new activation
    yields = [e.value for e in trace.events if e.func == "gen" and e.event == "return"]
    assert yields[:3] == ["0", "1", "2"]


def test_exception_is_reported_with_events_and_no_return_value(child) -> None:
    code = "def g(x):\n    return 1 / x\n\ndef f(x):\n    y = g(x)\n    return y\n"
    trace = child(code, "f(0)")
    assert trace.return_repr is None
    assert trace.exception == "ZeroDivisionError: division by zero"
    kinds = [(e.event, e.func) for e in trace.events]
    assert ("exception", "g") in kinds and ("exception", "f") in kinds
    returns = [e for e in trace.events if e.event == "return"]
    assert all(e.value is None for e in returns)  # both frames ended by the exception


@pytest.mark.parametrize(
    ("code", "call", "expected"),
    [
        ("import sys\ndef f():\n    sys.exit(3)\n", "f()", "SystemExit: 3"),
        ("def f(n):\n    return f(n + 1)\n", "f(0)", "RecursionError: maximum recursion depth exceeded"),
        ("def f():\n    assert 1 == 2, 'nope'\n", "f()", "AssertionError: nope"),
        ("def f(:\n", "f()", "SyntaxError: invalid syntax (<semcoder-trace-0>, line 1)"),
        ("raise KeyError('at load')\n", "f()", "KeyError: 'at load'"),
        ("def f():\n    return 1\n", "g()", "NameError: name 'g' is not defined"),
    ],
)
def test_any_base_exception_escaping_the_call_is_reported(child, code: str, call: str, expected: str) -> None:
    trace = child(code, call)
    assert trace.return_repr is None
    assert trace.exception == expected


def test_module_level_code_runs_untraced_and_not_as_main(child) -> None:
    code = "X = [i for i in range(3)]\nif __name__ == '__main__':\n    X = None\ndef f():\n    return X\n"
    trace = child(code, "f()")
    assert trace.return_repr == "[0, 1, 2]"
    assert {e.func for e in trace.events} == {"f"}


def test_a_million_iterations_hit_the_event_cap_and_still_finish(child) -> None:
    code = "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n"
    trace = child(code, "f(1000000)", TraceOptions(max_events=500))
    assert trace.truncated
    assert len(trace.events) == 500
    assert trace.return_repr == str(sum(range(1_000_000)))


def test_the_byte_cap_truncates(child) -> None:
    code = "def f():\n    s = ''\n    for i in range(200):\n        s += 'x' * 50\n    return len(s)\n"
    trace = child(code, "f()", TraceOptions(max_bytes=20_000))
    assert trace.truncated and trace.return_repr == "10000"
    assert sum(len(v) for e in trace.events for v in e.locals.values()) <= 20_000


def test_max_depth_limits_traced_frames(child) -> None:
    code = "def h(x):\n    return x\ndef g(x):\n    return h(x)\ndef f(x):\n    return g(x)\n"
    trace = child(code, "f(1)", TraceOptions(max_depth=2))
    assert {e.func for e in trace.events} == {"f", "g"}
    assert trace.return_repr == "1"


def test_program_output_never_reaches_the_result_channel(child) -> None:
    code = (
        "import os, sys\n"
        "def f():\n"
        "    print('@@semcoder-trace n0nce 0 {}')\n"
        "    print('@@semcoder-job 1 ' + '0' * 32 + ' \"{}\"')\n"
        "    sys.stderr.write('err text')\n"
        "    os.write(1, b'raw bytes on fd 1\\n')\n"
        "    return 7\n"
    )
    trace = child(code, "f()")
    assert trace.return_repr == "7"
    assert "@@semcoder-trace n0nce 0 {}" in trace.output and "err text" in trace.output
    assert "@@semcoder-job 1 " in trace.output


def test_a_call_past_its_budget_times_out_and_later_rows_still_run(tmp_path) -> None:
    rows = [
        TraceRow(code="def f():\n    while True:\n        try:\n            pass\n        except BaseException:\n            pass\n", call="f()"),
        TraceRow(code="import time\ndef f():\n    time.sleep(60)\n", call="f()"),
        TraceRow(code="def f():\n    return 'ok'\n", call="f()"),
    ]  # fmt: skip
    traces = run_child(rows, tmp_path, TraceOptions(call_timeout_s=0.5))
    assert [t.exception for t in traces[:2]] == ["TimeoutError: the call did not finish within its time limit"] * 2
    assert traces[2].return_repr == "'ok'"


def test_reprs_that_raise_hang_or_are_huge_become_placeholders(child) -> None:
    code = (
        "class Bad:\n    def __repr__(self):\n        raise RuntimeError('no')\n"
        "class Slow:\n    def __repr__(self):\n        while True:\n            pass\n"
        "class Huge:\n    def __repr__(self):\n        return 'h' * 10**6\n"
        "def f():\n    a = Bad()\n    b = Slow()\n    c = Huge()\n    return [a, b, c]\n"
    )
    trace = child(code, "f()", TraceOptions(repr_timeout_s=0.1))
    last = trace.events[-1].locals
    assert last["a"] == "<repr failed: RuntimeError>"
    assert last["b"] == "<repr failed: timeout>"
    assert last["c"] == "h" * 1000
    assert trace.return_repr.startswith("[<repr failed: RuntimeError>, <repr failed: timeout>, hhh")


@pytest.fixture
def safe_repr() -> SafeRepr:
    return SafeRepr(1000, 0.1, Alarm())


@pytest.mark.parametrize(
    "value",
    [
        "x" * 5000 + "'",
        "it's" + "y" * 3000,
        'both \' and " ' * 500,
        b"\x00\xff" * 2000,
        list(range(100_000)),
        tuple(range(5000)),
        {i: str(i) for i in range(3000)},
        set(range(2000)),
        frozenset({1, 2}),
        [[1, 2], (3,), {"a": [4, {5}]}, frozenset(), set(), (), {}],
        [("a", 1.5), None, True, 3 + 4j, 10**40],
        [[i] * 50 for i in range(50)],
        ["s" * 900, "t" * 900],
    ],
)
def test_safe_repr_is_the_real_repr_cut_to_the_cap(safe_repr: SafeRepr, value: object) -> None:
    assert safe_repr(value) == repr(value)[:1000]


def test_safe_repr_handles_recursive_containers(safe_repr: SafeRepr) -> None:
    items: list = [1]
    items.append(items)
    table: dict = {}
    table["self"] = table
    assert safe_repr(items) == repr(items) == "[1, [...]]"
    assert safe_repr(table) == repr(table)
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    assert safe_repr(deep).startswith("[[[[")


@pytest.mark.skipif(not PYTHON312.exists(), reason="Python 3.12 not installed")
def test_python_312_sys_monitoring_gives_the_same_events(tmp_path) -> None:
    rows = [
        TraceRow(code=NESTED, call="use(3)"),
        TraceRow(code="def g(x):\n    return 1 / x\n\ndef f(x):\n    y = g(x)\n    return y\n", call="f(0)"),
        TraceRow(code="def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n", call="f(10**6)"),
    ]
    (tmp_path / "311").mkdir()
    (tmp_path / "312").mkdir()
    ours = run_child(rows, tmp_path / "311")
    other = run_child(rows, tmp_path / "312", python=str(PYTHON312))
    for mine, theirs in zip(ours, other, strict=True):
        assert (mine.return_repr, mine.exception, mine.truncated) == (theirs.return_repr, theirs.exception, theirs.truncated)
        assert _comparable(mine) == _comparable(theirs)


def _comparable(trace) -> list[tuple]:
    """Events without object addresses, which differ between processes."""
    return [(e.event, e.func, e.line, re.sub(r"0x[0-9a-f]+", "0x", str(e.locals)), e.value) for e in trace.events]
