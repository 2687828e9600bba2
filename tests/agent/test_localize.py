"""Ochiai ranks the lines only failing tests run above the lines everyone runs."""

from __future__ import annotations

import math

from agent.localize import enclosing_function, function_source, ochiai, rank_functions, rank_lines
from agent.tasks import TestOutcome, TestReport

SOURCE = "def f(x):\n    if x > 0:\n        return x\n    return -x\n\n\ndef g():\n    return 1\n"


def test_ochiai_formula():
    assert ochiai(2, 0, 2) == 1.0
    assert math.isclose(ochiai(1, 3, 2), 1 / math.sqrt(2 * 4))
    assert ochiai(0, 5, 3) == 0.0 and ochiai(0, 0, 0) == 0.0


def test_rank_lines_and_functions():
    report = TestReport(
        outcomes=[TestOutcome(id="t::a", outcome="passed"), TestOutcome(id="t::b", outcome="failed"),
                  TestOutcome(id="t::c", outcome="passed")],
        coverage={"t::a": [("m.py", 1), ("m.py", 2), ("m.py", 3)], "t::b": [("m.py", 1), ("m.py", 2), ("m.py", 4)],
                  "t::c": [("m.py", 7), ("m.py", 8)]},
    )
    ranked = rank_lines(report, {"m.py": SOURCE})
    assert [(s.line, round(s.score, 3)) for s in ranked] == [(4, 1.0), (2, round(1 / math.sqrt(2), 3))]
    assert ranked[0].function == "f"
    assert rank_functions(ranked) == [("m.py", "f", 1.0)]


def test_function_helpers():
    nested = "def outer():\n    def inner():\n        return 1\n    return inner\n"
    # A nested helper's line belongs to the function that defines it (they are shown and patched together).
    assert enclosing_function(nested, 3) == "outer" and enclosing_function(nested, 4) == "outer"
    assert enclosing_function(nested, 99) is None
    assert function_source(SOURCE, "g") == "def g():\n    return 1"
    method = "class Shelf(Base):\n    \"\"\"Books.\"\"\"\n\n    @staticmethod\n    def count(x):\n        return x\n"
    assert enclosing_function(method, 6) == "Shelf.count"
    # A method is shown under its class's signature line, decorators kept.
    assert function_source(method, "Shelf.count") == "class Shelf(Base):\n    @staticmethod\n    def count(x):\n        return x"
