"""Linear warmup, then cosine decay to a floor; a pure function of the step so a resumed run continues it."""

from __future__ import annotations

import math


def learning_rate(step: int, *, total: int, warmup: int, peak: float, min_ratio: float) -> float:
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def warmup_steps(total: int, ratio: float, fixed: int | None) -> int:
    return fixed if fixed is not None else math.ceil(total * ratio)
