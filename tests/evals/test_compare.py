"""Output judging with EvalPlus 0.3.1's semantics (atol, float default, special oracles)."""

from __future__ import annotations

import pytest

from evals._compare import judge_output, outputs_match


@pytest.mark.parametrize(
    ("out", "exp", "atol", "expected"),
    [
        ([1, 2], [1, 2], 0, True),
        ((1, 2), [1, 2], 0, False),
        (1.0, 1, 0, True),  # builtin equality, as EvalPlus's `out == exp`
        (0.1 + 0.2, 0.3, 0, True),  # float outputs get atol 1e-6 by default
        (0.3001, 0.3, 0, False),
        ([0.1 + 0.2, 1.0], [0.3, 1.0], 0, True),
        ((0.3,), [0.3], 1e-6, False),  # tolerance requires the same type
        ([0.3, 0.3], [0.3], 1e-6, False),
        (2.00005, 2.0, 1e-4, True),
        ("a", "b", 1e-4, False),
        (float("nan"), float("nan"), 0, False),
        (float("inf"), float("inf"), 0, True),
    ],
)
def test_outputs_match(out: object, exp: object, atol: float, expected: bool) -> None:
    assert outputs_match(out, exp, atol) is expected


def test_find_zero_accepts_any_root_within_atol() -> None:
    # x^2 - 1 has roots 1 and -1; the canonical answer may be either.
    assert judge_output("humaneval", "find_zero", [[-1, 0, 1]], -1.0, 1.0, 1e-4)
    assert not judge_output("humaneval", "find_zero", [[-1, 0, 1]], 0.5, 1.0, 1e-4)
    assert not judge_output("humaneval", "find_zero", [[-1, 0, 1]], "1", 1.0, 1e-4)


def test_mbpp_set_oracle_ignores_order_but_not_content() -> None:
    assert judge_output("mbpp", "similar_elements", [(1, 2), (2, 1)], (2, 1), (1, 2), 0)
    assert not judge_output("mbpp", "similar_elements", [(1, 2), (2, 1)], (1, 3), (1, 2), 0)
    assert not judge_output("mbpp", "similar_elements", [(1, 2), (2, 1)], [[1]], (1, 2), 0)  # unhashable: fails


def test_special_oracles_apply_only_to_their_dataset() -> None:
    assert judge_output("mbpp", "sum_div", [7], 0, 1, 0)
    assert not judge_output("humaneval", "sum_div", [7], 0, 1, 0)
