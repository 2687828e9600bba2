"""A failing pytest test becomes the paper's `retv = call` / `assert retv == expected`."""

from __future__ import annotations

from agent.failing_test import call_for_module, called_function, describe
from agent.feedback import test_block as render_test_block
from agent.splice import SpliceError, apply_refined
from agent.tasks import TestOutcome

TESTS = '''from m import f
import m


def test_direct():
    assert f(1, 2) == 3


def test_through_name():
    result = m.f(2, 2)
    assert result == 4


def test_two_asserts():
    assert f(0, 0) == 0
    assert 7 == f(3, 4)


def test_raises():
    import pytest
    with pytest.raises(ValueError):
        f(None, 1)
'''


def failed(name: str, line: int | None = None):
    return describe(TestOutcome(id=f"test_m.py::{name}", outcome="failed", test_line=line), {"test_m.py": TESTS})


def test_derivations():
    assert (failed("test_direct").call, failed("test_direct").expected) == ("f(1, 2)", "3")
    assert (failed("test_through_name").call, failed("test_through_name").expected) == ("m.f(2, 2)", "4")
    second = failed("test_two_asserts", line=16)
    assert (second.call, second.expected) == ("f(3, 4)", "7")
    assert render_test_block(failed("test_direct")) == "retv = f(1, 2)\nassert retv == 3\n"


def test_fallback_is_the_test_source():
    raises = failed("test_raises")
    assert raises.call is None and render_test_block(raises).startswith("def test_raises():")


def test_module_prefix_and_called_function():
    assert call_for_module("pkg.m.f(1)", "pkg/m.py") == "f(1)"
    assert called_function("m.f(1)") == "f" and called_function("f(2)") == "f"


def test_splice_replaces_only_the_function():
    source = "import math\n\n\nclass A:\n    def f(self):\n        return 1\n\n\ndef g():\n    return 2\n"
    patched = apply_refined(source, "def f(self):\n    return 3\n", "f")
    assert patched == source.replace("return 1", "return 3")
    assert apply_refined(source, "x = 1", None) == "x = 1\n"
    for bad, reason in (("def f(:", "does not parse"), ("def h():\n    pass", "does not define f")):
        try:
            apply_refined(source, bad, "f")
        except SpliceError as exc:
            assert reason in str(exc)
        else:
            raise AssertionError("expected a SpliceError")


CONSTANTS = '''from m import f

STOCK = {"apples": 3}
EXPECTED = ["apples"]
MUTABLE = make()
TWICE = 1
TWICE = 2


def test_module_constants():
    assert f(STOCK, 5) == EXPECTED


def test_local_literal():
    rows = [1, 2]
    assert f(rows, MUTABLE) == len(rows)


def test_rebound():
    assert f(TWICE) == 2
'''


def test_a_call_is_concrete_where_the_test_module_binds_a_literal():
    """The code under repair has no STOCK: the traced and shown call carries the literal."""
    def of(name: str):
        got = describe(TestOutcome(id=f"test_m.py::{name}", outcome="failed"), {"test_m.py": CONSTANTS})
        return got.call, got.expected

    assert of("test_module_constants") == ("f({'apples': 3}, 5)", "['apples']")
    # a local literal is inlined; a name bound to a call's result is left as it is
    assert of("test_local_literal") == ("f([1, 2], MUTABLE)", "len([1, 2])")
    assert of("test_rebound") == ("f(TWICE)", "2")  # bound twice: which value holds is not for us to guess
