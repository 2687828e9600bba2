"""Two models on the same tasks: which tasks each alone solves, and whether the difference is chance.

Comparing two pass rates as if they were independent samples throws away that both models saw the same
tasks; the paired (McNemar) view counts only the tasks where they disagree, and its exact test is a
binomial test on those discordant tasks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel


class PairedComparison(BaseModel):
    tasks: int
    both: int
    only_a: int
    only_b: int
    neither: int
    p_value: float  # exact two-sided McNemar

    def summary(self, name_a: str, name_b: str) -> str:
        return (f"{self.tasks} tasks: both solve {self.both}, only {name_a} {self.only_a}, only {name_b} "
                f"{self.only_b}, neither {self.neither}; exact McNemar p = {self.p_value:.2g}")


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact p-value: how likely a split this uneven is if each discordant task were a coin flip."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare_solved(a: Mapping[str, bool], b: Mapping[str, bool]) -> PairedComparison:
    """`a` and `b` map each task id to whether that model solved it; both must cover the same tasks."""
    if set(a) != set(b):
        missing = sorted(set(a) ^ set(b))[:3]
        raise ValueError(f"the two runs cover different tasks (e.g. {missing})")
    only_a = sum(a[t] and not b[t] for t in a)
    only_b = sum(b[t] and not a[t] for t in a)
    both = sum(a[t] and b[t] for t in a)
    return PairedComparison(tasks=len(a), both=both, only_a=only_a, only_b=only_b,
                            neither=len(a) - both - only_a - only_b, p_value=mcnemar_exact(only_a, only_b))
