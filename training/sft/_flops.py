"""Useful model FLOPs of a training step, for MFU: padding excluded, causal attention counted once.

Per real token, forward + backward do 6 FLOPs per weight that multiplies it (every parameter but the input
embedding, which is a lookup). Causal attention adds, per layer and per sample of length l, QK^T and AV over
l^2/2 pairs: 2 * 2 * hidden * l^2 / 2 FLOPs forward, times 3 with backward, i.e. 6 * hidden * l^2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def matmul_parameters(model: torch.nn.Module) -> int:
    embedding = model.get_input_embeddings().weight  # type: ignore[operator]
    total = sum(p.numel() for p in model.parameters())
    lm_head = model.get_output_embeddings()  # type: ignore[operator]
    tied = lm_head is not None and lm_head.weight is embedding
    # A tied head still multiplies every token by the embedding matrix.
    return total if tied else total - embedding.numel()


def step_flops(matmul_params: int, layers: int, hidden: int, sample_lengths: Sequence[int]) -> float:
    tokens = sum(sample_lengths)
    attention = 6.0 * layers * hidden * sum(length * length for length in sample_lengths)
    return 6.0 * matmul_params * tokens + attention


def mfu(flops: float, seconds: float, peak_tflops: float | None) -> float | None:
    if not peak_tflops or seconds <= 0:
        return None
    return flops / seconds / (peak_tflops * 1e12)
