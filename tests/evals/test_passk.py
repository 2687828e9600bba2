from __future__ import annotations

from math import comb

import pytest

from evals.passk import mean_pass_at_k, pass_at_k


@pytest.mark.parametrize(("n", "c", "k"), [(10, 0, 1), (10, 1, 1), (10, 3, 5), (20, 7, 10), (5, 5, 5), (200, 13, 100)])
def test_matches_the_binomial_definition(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_stays_finite_where_binomials_overflow_floats() -> None:
    value = pass_at_k(2000, 1, 1000)
    assert value == pytest.approx(0.5)


def test_certain_when_fewer_wrong_samples_than_k() -> None:
    assert pass_at_k(10, 8, 5) == 1.0


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, -1, 1), (3, 1, 4), (3, 1, 0)])
def test_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_mean_is_none_when_a_task_has_fewer_than_k_samples() -> None:
    assert mean_pass_at_k([(10, 2), (4, 1)], 5) is None
    assert mean_pass_at_k([(1, 1), (1, 0)], 1) == 0.5
