"""The plain-value encoding that carries outputs from the sandbox to the host."""

from __future__ import annotations

import pytest

from evals._harness import NotPlainError, decode, digest, encode, fingerprint, keyed_digest, run_digest


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


LONG = "x" * 5000


@pytest.mark.parametrize(("one", "other"), [
    (LONG, LONG + ""),  # an equal str, built anew
    (LONG, LONG[:-1] + "y"),
    (LONG, LONG[:-1]),
    ("\ud800" + LONG, "\ud801" + LONG),  # lone surrogates (encoded as surrogatepass)
    ("é" + LONG, "e" + LONG),
    ([LONG, 1], [LONG[:-1] + "y", 1]),
])
def test_fingerprints_are_equal_exactly_where_encodings_are(one: object, other: object) -> None:
    """Outputs are compared by the digest of their fingerprint: a long str is hashed instead of escaped, and the
    fingerprint must still tell apart exactly what the encoding tells apart."""
    assert (fingerprint(one) == fingerprint(other)) == (encode(one) == encode(other))


def test_a_long_str_fingerprint_is_a_digest_no_encoding_can_be() -> None:
    assert fingerprint("short") == encode("short")
    hashed = fingerprint(LONG)
    assert hashed.startswith('{"U":"') and len(hashed) < 64
    assert decode(encode(hashed)) == hashed  # the text of a str that looks like it encodes as that str, not as it


def test_the_stop_digest_is_of_the_unkeyed_digest_and_differs_from_it() -> None:
    unkeyed = digest(fingerprint(LONG))
    assert keyed_digest(unkeyed) != unkeyed and len(keyed_digest(unkeyed)) == len(unkeyed) == 32
    assert run_digest([unkeyed, unkeyed]) != run_digest([unkeyed]) != unkeyed
