"""The loss curve of a run, drawn off-screen (matplotlib's Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_loss(history: Sequence[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Loss per step (left axis) and learning rate (right axis); None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed: no {path.name} (metrics.jsonl has the numbers)", flush=True)
        return None
    steps = [m["step"] for m in history]
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(steps, [m["loss"] for m in history], color="tab:blue", label="loss")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss (mean over loss-carrying tokens)")
    lr_axis = axis.twinx()
    lr_axis.plot(steps, [m["lr"] for m in history], color="tab:gray", alpha=0.5, label="learning rate")
    lr_axis.set_ylabel("learning rate")
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
