"""Judging one output of a solution against the canonical output, with EvalPlus 0.3.1's semantics.

Both values were decoded from the harness's plain-value encoding, so `==` here is builtin equality:
an object with an always-true `__eq__` never reaches this module (the harness refuses to encode it).

Deliberate differences from EvalPlus 0.3.1's `unsafe_execute`:
- EvalPlus sets `atol = 1e-6` the first time it meets a float expected output and keeps it for the
  task's later inputs; here the 1e-6 default applies to float outputs only, input by input.
- `np.allclose` is replaced by an exact pure-Python equivalent (rtol 1e-7, elementwise over equal-length
  lists/tuples; non-numeric elements are not close).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from evals._harness import is_floats

RTOL = 1e-7
FLOAT_ATOL = 1e-6


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | complex)


def _isclose(a: complex, b: complex, atol: float) -> bool:
    try:
        if any(math.isinf(abs(v)) for v in (a, b)):
            return a == b
        return abs(a - b) <= atol + RTOL * abs(b)
    except OverflowError:
        return False


def allclose(out: Any, exp: Any, atol: float) -> bool:
    if _is_number(out) and _is_number(exp):
        return _isclose(out, exp, atol)
    if isinstance(out, list | tuple) and isinstance(exp, list | tuple) and len(out) == len(exp):
        return all(allclose(o, e, atol) for o, e in zip(out, exp, strict=True))
    return False


def outputs_match(out: Any, exp: Any, atol: float, exact: bool | None = None) -> bool:
    """EvalPlus's final check: exact equality, or closeness where a tolerance applies."""
    if exact is None:
        exact = out == exp
    if atol == 0 and is_floats(exp):
        atol = FLOAT_ATOL
    if exact or atol == 0:
        return exact
    if type(out) is not type(exp):
        return False
    if isinstance(exp, list | tuple) and len(out) != len(exp):
        return False
    return allclose(out, exp, atol)


# --- special oracles (EvalPlus's `_special_oracle.py`): where differential testing alone is wrong ---

def _poly(xs: list, x: float) -> float:
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def _surface_area(base_edge: float, height: float) -> int:
    slant_height = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 4 * (base_edge * slant_height) / 2)


def _digit_distance_nums(num1: int, num2: int) -> int:
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width), strict=True))


# Tasks whose outputs are re.Match objects: the harness turns them into "is not None" booleans.
MBPP_OUTPUT_NOT_NONE = frozenset({"check_str", "text_match_three", "text_starta_endb"})
MBPP_OUTPUT_SET_EQ = frozenset(
    {"similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly", "larg_nnum",
     "intersection_array", "find_dissimilar", "Diff"}
)

Oracle = Callable[[list, Any, Any, float], bool]


def _find_zero(args: list, out: Any, exp: Any, atol: float) -> bool:
    return abs(_poly(*args, out)) <= atol


def _exact_or(alternative: Callable[[list, Any, float], bool]) -> Oracle:
    def oracle(args: list, out: Any, exp: Any, atol: float) -> bool:
        return outputs_match(out, exp, atol, exact=out == exp or alternative(args, out, atol))

    return oracle


def _set_equal(args: list, out: Any, exp: Any, atol: float) -> bool:
    return outputs_match(out, exp, atol, exact=set(out) == set(exp))


_ORACLES: dict[tuple[str, str], Oracle] = {
    ("humaneval", "find_zero"): _find_zero,
    ("mbpp", "are_equivalent"): _exact_or(lambda args, out, atol: True),
    ("mbpp", "sum_div"): _exact_or(lambda args, out, atol: out == 0),
    ("mbpp", "surface_Area"): _exact_or(lambda args, out, atol: abs(out - _surface_area(*args)) <= atol),
    ("mbpp", "digit_distance_nums"): _exact_or(lambda args, out, atol: out == _digit_distance_nums(*args)),
    **{("mbpp", name): _set_equal for name in MBPP_OUTPUT_SET_EQ},
}


def special_oracle(dataset: str, entry_point: str) -> Oracle | None:
    """The special check for this task, if EvalPlus uses one (dataset: 'humaneval' or 'mbpp')."""
    return _ORACLES.get((dataset, entry_point))


def judge_output(dataset: str, entry_point: str, args: list, out: Any, exp: Any, atol: float) -> bool:
    """Whether `out` is an acceptable output for `args`, given the canonical output `exp`."""
    oracle = special_oracle(dataset, entry_point)
    try:
        if oracle is not None:
            return bool(oracle(args, out, exp, atol))
        return outputs_match(out, exp, atol)
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return False
