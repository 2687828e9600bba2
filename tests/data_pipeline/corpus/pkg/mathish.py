"""Numeric helpers for the pipeline's test corpus."""

import math


def digit_sum(n: int) -> int:
    """Sum of the decimal digits of abs(n).

    >>> digit_sum(1234)
    10
    """
    n = abs(n)
    total = 0
    while n:
        total += n % 10
        n //= 10
    return total


def hypotenuse(a: float, b: float) -> float:
    """Length of the hypotenuse of a right triangle with legs a and b."""
    return math.sqrt(a * a + b * b)


def spin_forever(n):
    """Never returns (must be dropped by the time limit)."""
    while True:
        n += 1
