"""The plain-value encoding that carries outputs from the sandbox to the host."""

from __future__ import annotations

import pytest

from evals._harness import NotPlainError, decode, encode


class AlwaysEqual:
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


class MyInt(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


PLAIN = [
    None, True, 0, -(10**5000), 1.5, float("inf"), "\ud800text", b"\x00\xff", 1 + 2j,
    [1, (2, 3)], (), {"a": [1], 2: {3: None}}, {1, 2, 3}, frozenset({(1, 2)}), [[[]]], {(): set()},
]


@pytest.mark.parametrize("value", PLAIN, ids=lambda v: type(v).__name__)
def test_round_trips_exactly(value: object) -> None:
    decoded = decode(encode(value))
    assert decoded == value
    assert type(decoded) is type(value)


def test_keeps_tuple_list_and_int_float_apart() -> None:
    assert encode((1, 2)) != encode([1, 2])
    assert (encode(1)) != (encode(1.0))
    assert (encode(True)) != (encode(1))


def test_equal_sets_and_dicts_encode_equally_whatever_their_order() -> None:
    assert (encode({1, 9, 17, 33})) == (encode({33, 17, 9, 1}))
    assert (encode({"b": 1, "a": 2})) == (encode({"a": 2, "b": 1}))


@pytest.mark.parametrize("value", [AlwaysEqual(), [1, AlwaysEqual()], MyInt(3), {"k": object()}, (x for x in [])],
                         ids=["object", "nested", "int subclass", "dict value", "generator"])
def test_refuses_anything_but_exact_builtin_types(value: object) -> None:
    with pytest.raises(NotPlainError):
        encode(value)
