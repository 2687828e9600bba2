"""The tracer's C forms (sandbox/_semcoder_speedups.c) give exactly what their Python forms give.

The extension is optional (built at install where a compiler exists); CI requires it (SEMCODER_REQUIRE_SPEEDUPS=1),
elsewhere these tests skip without it. The Python forms stay the reference: every row of CRUXEval and the edge rows
is traced in-process both ways under several option sets, the locals differ is driven through random snapshots of
every value shape the fast paths know (and some they must hand back), and the trace line is built both ways from
the same records, well-formed or not.
"""

from __future__ import annotations

import json
import os
import random
import re

import pytest
from conftest import cruxeval_rows
from test_user_path import EDGE_ROWS

from sandbox import Job, run_job
from sandbox import _tracer_child as child
from sandbox._job_child import RawJSON
from sandbox.tracer import _json_line, _speedups_files, json_line_py

try:
    from sandbox import _semcoder_speedups as speedups
except ImportError:  # not built here
    speedups = None

REQUIRED = os.environ.get("SEMCODER_REQUIRE_SPEEDUPS") == "1"
needs_speedups = pytest.mark.skipif(speedups is None and not REQUIRED, reason="the C speedups are not built here")


def test_the_extension_is_built_where_it_is_required() -> None:
    if not REQUIRED:
        pytest.skip("SEMCODER_REQUIRE_SPEEDUPS is not set")
    assert speedups is not None, "sandbox/_semcoder_speedups.c was not built (pip install -e . needs a C compiler)"
    assert set(_speedups_files()) == {"_semcoder_speedups" + speedups.__file__.rsplit("_semcoder_speedups", 1)[1]}


# Rows that stress what the fast paths decide: caps, shapes, values that change in place, a locals dict that
# changes size while a repr runs, a class body (its namespace's keys are not all strings).
STRESS_ROWS = [
    {"code": "def f(n):\n    xs, d, s = [], {}, ''\n    for i in range(n):\n        xs.append(str(i) * i)\n"
             "        d[i] = xs[-1]\n        s += chr(65 + i)\n        t = tuple(xs)\n    return xs, d, s\n",
     "call": "f(12)"},
    {"code": "def f():\n    a = [[1, 2], [3]]\n    a[0].append(9)\n    b = [(1, 2), (3, 4)]\n    c = {'k': 1.5, 2: None}\n"
             "    c['k'] = 'v'\n    del a\n    e = {1, 2}\n    e.add(3)\n    g = frozenset(e)\n    h = 10 ** 20\n"
             "    h += 1\n    return c\n", "call": "f()"},
    {"code": "class R:\n    def __repr__(self):\n        import sys\n        sys._getframe(1).f_locals\n"
             "        return 'R!'\n\ndef f():\n    r = R()\n    x = 1\n    y = [r]\n    return y\n", "call": "f()"},
    {"code": "def f():\n    class K:\n        a = 1\n        b = [a] * 3\n        locals()[5] = 'x'\n    return K.b\n",
     "call": "f()"},
    {"code": "def f(n):\n    x = 'ab' * n\n    y = [x] * 3\n    z = {x: y}\n    return len(x)\n", "call": "f(600)"},
]
OPTION_SETS = [
    {},
    {"states_only": True},
    {"max_events": 40, "repr_chars": 12},
    {"max_bytes": 3000, "repr_chars": 50},
]
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _trace_all(rows: list[dict], options: dict, monkeypatch: pytest.MonkeyPatch, c_forms: bool) -> list[str]:
    monkeypatch.setattr(child, "_diff_locals", speedups.diff_locals if c_forms else child.diff_locals)
    monkeypatch.setattr(child, "_CTracer", speedups.Tracer if c_forms else None)
    monkeypatch.setattr(child, "_encode_record", speedups.encode_record if c_forms else None)
    runner = child.RowRunner(options, child.Alarm())
    try:
        return [_ADDRESS.sub(" at 0x", child.encode_result(runner.run(r["code"], r["call"], f"<speedups-{i}>")))
                for i, r in enumerate(rows)]
    finally:
        runner._alarm.disarm()


@needs_speedups
@pytest.mark.parametrize("options", OPTION_SETS, ids=["default", "states_only", "event_cap", "byte_cap"])
def test_the_c_tracer_records_what_the_python_engine_records(options: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = ([{"code": r["code"], "call": f"f({r['input']})"} for r in cruxeval_rows()]
            + [{"code": r.code, "call": r.call} for r in EDGE_ROWS] + STRESS_ROWS)
    python = _trace_all(rows, options, monkeypatch, c_forms=False)
    c = _trace_all(rows, options, monkeypatch, c_forms=True)
    differing = [i for i, (a, b) in enumerate(zip(python, c, strict=True)) if a != b]
    assert not differing, (differing[:5], python[differing[0]][:600], c[differing[0]][:600])
    records = [json.loads(line) for line in c]
    assert sum(bool(r["exception"]) for r in records) >= 1 and any(r["truncated"] for r in records) == bool(
        options.get("max_events") or options.get("max_bytes"))


class _Odd:
    def __repr__(self) -> str:
        return "<odd>"


class _Broken:
    def __repr__(self) -> str:
        raise ValueError("no")


def _random_value(rng: random.Random, depth: int = 0) -> object:
    scalars = [0, -3, 10**15, -(10**15) + 1, 10**40, 2.5, float("nan"), True, None, 1j]
    kind = rng.randrange(14 if depth < 2 else 6)
    if kind == 0:
        return rng.choice(scalars)
    if kind == 1:
        return "".join(rng.choice("ab'\"\\é\n") for _ in range(rng.choice([0, 3, 40, 300])))
    if kind == 2:
        return rng.choice([b"x'y", bytes(range(5)) * 50])
    if kind == 3:
        return rng.choice([_Odd(), _Broken()])
    if kind == 4:
        return [rng.choice(scalars) for _ in range(rng.choice([0, 2, 200, 300]))]
    if kind == 5:
        return tuple(rng.choice(scalars) for _ in range(rng.choice([1, 5])))
    if kind == 6:
        return ["s" * rng.choice([1, 40]) for _ in range(rng.choice([3, 250]))]
    if kind == 7:
        return [tuple(rng.choice(scalars) for _ in range(3)) for _ in range(rng.choice([2, 90]))]
    if kind == 8:
        return [[1, 2], (3,)] * rng.choice([1, 70])
    if kind == 9:
        return {rng.choice(["k", 1, 2.0, None]): rng.choice(["v" * rng.choice([1, 9000]), 3, None]) for _ in range(4)}
    if kind == 10:
        return {"a": [1], "b": _random_value(rng, depth + 1)}
    if kind == 11:
        return rng.choice([{1, 2}, frozenset({"x"})])
    if kind == 12:
        return [_random_value(rng, depth + 1) for _ in range(3)]
    return ["x", 1]


@needs_speedups
@pytest.mark.parametrize("cap", [5, 40, 1000])
def test_the_c_differ_matches_the_python_one_on_random_snapshots(cap: int) -> None:
    rng = random.Random(cap)
    reprer = child.SafeRepr(cap, 0.25, child.Alarm())
    slow = child.Recorder({**child.DEFAULT_OPTIONS, "repr_chars": cap}, reprer)._slow
    names: dict[str, object] = {}
    states = {form: ({}, {}, [0]) for form in ("python", "c")}
    functions = {"python": child.diff_locals, "c": speedups.diff_locals}
    for _ in range(400):
        step = rng.randrange(5)
        name = rng.choice("abcdefg")
        if step == 0:
            names.pop(name, None)
        elif step == 1 and isinstance(names.get(name), list):
            names[name].append(rng.choice([1, "s", (2,)]))  # the same list, changed in place
        elif step == 2 and isinstance(names.get(name), dict):
            names[name][rng.choice(["k", "new"])] = rng.choice([1, "w"])
        else:
            names[name] = _random_value(rng)
        results = {}
        for form, (current, shadows, size) in states.items():
            delta, removed, size[0] = functions[form](names, current, shadows, size[0], cap, slow, child.same_items)
            results[form] = (delta, removed, size[0], dict(current), {k: v[1] for k, v in shadows.items()})
        assert repr(results["python"]) == repr(results["c"])


@needs_speedups
def test_the_c_trace_line_is_the_python_one_and_refuses_what_it_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"code": r.code, "call": r.call} for r in EDGE_ROWS] + STRESS_ROWS
    records = [json.loads(line) for line in _trace_all(rows, {"states_only": True}, monkeypatch, c_forms=True)]
    for record in records:
        assert speedups.json_line(record) == json_line_py(record)
    base = {"return_repr": "1", "exception": None, "events": [["call", 1, {}, 0]], "frames": [["f", 1]],
            "truncated": False, "output": ""}
    bad = [{"events": [["jump", 1, {}, 0]]}, {"events": [["line", True, {}, 0]]}, {"events": [["line", 2, {}, 1]]},
           {"events": [["line", 2, {}, 2**80]]}, {"events": [["line", 2, {"x": 1}, 0]]},
           {"events": [["line", 2, {}, 0, "x", None]]}, {"events": [["line", 2, {}, 0, None]]},
           {"events": [["line", 2, {}, 0, [["unhashable"]], None]]}, {"events": ["line"]}, {"frames": [["f", "1"]]},
           {"frames": [["f"]]}, {"return_repr": 42}, {"truncated": "no"}, {"output": None}, {"events": {}}]
    for item in bad:
        record = {**base, **item}
        for form in (speedups.json_line, json_line_py):
            with pytest.raises((TypeError, ValueError, LookupError)):
                form(record)
    for missing in base:
        record = {k: v for k, v in base.items() if k != missing}
        for form in (speedups.json_line, json_line_py):
            with pytest.raises(LookupError):
                form(record)


@needs_speedups
def test_a_sandboxed_job_loads_the_shipped_extension() -> None:
    program = "def main(data, channel):\n    import _semcoder_speedups\n    channel.send(_semcoder_speedups.__name__)\n"
    result = run_job(Job(program=program, files=_speedups_files()))
    assert result.ok, result.problem
    assert result.records == ["_semcoder_speedups"]


@needs_speedups
def test_the_raw_trace_line_is_the_decoded_one_and_other_forms_take_the_python_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rows = ([{"code": r["code"], "call": f"f({r['input']})"} for r in cruxeval_rows()[:200]]
            + [{"code": r.code, "call": r.call} for r in EDGE_ROWS] + STRESS_ROWS)
    texts = _trace_all(rows, {"states_only": True}, monkeypatch, c_forms=True)
    texts.append(child.encode_result({"return_repr": "\ud83d\ude00\ud800 \x7f\x00é", "exception": None,
                                      "events": [["line", -1, {"s": "\"\\\n\t\b\f\r"}, 0, ["gone"], None]],
                                      "frames": [["f", 1]], "truncated": True, "output": "\U0001f600"}))
    for text in texts:
        assert speedups.json_line_raw(RawJSON(text)) == json_line_py(json.loads(text))
        assert _json_line(RawJSON(text)) == json_line_py(json.loads(text))
    # The same records in another form (other spacing, escapes json.dumps would not write, another key order):
    # refused by the raw reader, then decoded and read as the Python path reads them.
    base = texts[-1]
    record = json.loads(base)
    others = [json.dumps(record, separators=(",", ":")), base.replace('["f", 1]', '["\\u0066", 1]'),
              base.replace("\\ud800", "\\uD800"), json.dumps(dict(reversed(list(record.items())))), base + " ",
              base.replace('["f", 1]', '["f", 01]'), base.replace("-1", "-0"), base.replace("\\n", "\\u000a"),
              base.replace('["f", 1]', '["f", 1.0]'), base.replace('"line"', '"jump"')]
    assert base not in others
    for other in others:
        with pytest.raises(ValueError):
            speedups.json_line_raw(other)
        try:
            expected = json_line_py(json.loads(other))
        except (TypeError, ValueError, LookupError) as error:
            expected = type(error).__name__
        try:
            got = _json_line(RawJSON(other))
        except (TypeError, ValueError, LookupError) as error:
            got = type(error).__name__
        assert got == expected
    for broken in ["", "{", "null", texts[0][:-1], texts[0] + "x", '{"return_repr": 1}', "é"]:
        with pytest.raises(ValueError):
            speedups.json_line_raw(broken)


@needs_speedups
def test_the_c_record_encoder_writes_what_the_json_module_writes() -> None:
    encoder = json.JSONEncoder(check_circular=False)
    rng = random.Random(7)
    values: list[object] = [{"a": [1, -2, 10**30, True, False, None, "x\"\\\n\t\x00\x7f\u00e9\U0001f600\ud800"],
                             "b": ("t", {}), "c": []}, {}, [], "", 0]
    for _ in range(2000):
        text = "".join(chr(rng.choice([rng.randrange(128), rng.randrange(0x110000)])) for _ in range(rng.randrange(20)))
        values.append({text: [text, rng.randrange(-(10**20), 10**20), (None,)]})
    for value in values:
        assert speedups.encode_record(value) == encoder.encode(value)
    for other in [1.5, {1: "a"}, [object()], {"k": {2: 3}}]:
        with pytest.raises(TypeError):
            speedups.encode_record(other)
