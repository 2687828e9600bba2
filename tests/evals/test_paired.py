import math

import pytest

from evals.paired import compare_solved, mcnemar_exact


def test_counts_the_four_cells():
    a = {"t1": True, "t2": True, "t3": False, "t4": False, "t5": True}
    b = {"t1": True, "t2": False, "t3": True, "t4": False, "t5": False}
    result = compare_solved(a, b)
    assert (result.both, result.only_a, result.only_b, result.neither) == (1, 2, 1, 1)
    assert result.tasks == 5


def test_exact_p_value_matches_the_binomial_tail():
    # 10 discordant tasks split 9:1 -> 2 * P(X <= 1), X ~ Bin(10, 1/2)
    assert mcnemar_exact(9, 1) == pytest.approx(2 * (1 + 10) / 2**10)
    assert mcnemar_exact(1, 9) == mcnemar_exact(9, 1)
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(35, 10) == pytest.approx(2 * sum(math.comb(45, i) for i in range(11)) / 2**45)


def test_refuses_runs_over_different_tasks():
    with pytest.raises(ValueError, match="different tasks"):
        compare_solved({"t1": True}, {"t2": True})
