"""The unbiased pass@k estimator (Chen et al., 2021), without numpy."""

from __future__ import annotations

from collections.abc import Iterable


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k) / C(n, k): the chance that k of n samples, c of them correct, include a correct one.

    Computed as a product of ratios, which stays accurate for large n where the binomials overflow floats.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    if k == 1:
        return c / n  # exact (the product below leaves rounding error, e.g. 0.4999999999999999)
    all_wrong = 1.0
    for m in range(n - c + 1, n + 1):
        all_wrong *= 1.0 - k / m
    return 1.0 - all_wrong


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float | None:
    """Mean pass@k over tasks given (n, c) per task; None when some task has fewer than k samples."""
    counts = list(counts)
    if not counts or any(n < k for n, _ in counts):
        return None
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)
