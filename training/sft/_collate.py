"""Micro-batches: which samples go together (a plan every process computes alike) and their tensors.

Padded: one sample per row, right padding, an attention mask. Packed: several samples per row of exactly
`pack_length` tokens, no attention mask, position ids restarting at 0 for each sample; transformers reads
those restarts as sample boundaries and masks attention block-diagonally (sdpa, eager, flex_attention) or
runs varlen kernels (flash attention), so no sample sees another. The tail of a packed row is padding:
its own position run, no loss, not counted as useful work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agent.prompts import IGNORE_INDEX
from training.sft._data import TokenSet

Row = list[int]  # sample indices, in order
MicroBatch = list[Row]

# Rows still open for first-fit packing; more packs tighter and costs planning time.
PACKING_WINDOW = 64


def pack_rows(lengths: Sequence[int], order: Sequence[int], pack_length: int) -> list[Row]:
    """First-fit over a window of open rows, in `order`; a row leaves the window when it is the oldest."""
    open_rows: list[tuple[int, Row]] = []  # (free tokens, samples)
    closed: list[Row] = []
    for index in order:
        need = int(lengths[index])
        slot = next((i for i, (free, _) in enumerate(open_rows) if free >= need), None)
        if slot is None:
            if len(open_rows) == PACKING_WINDOW:
                closed.append(open_rows.pop(0)[1])
            open_rows.append((pack_length - need, [index]))
        else:
            free, row = open_rows[slot]
            row.append(index)
            open_rows[slot] = (free - need, row)
    return closed + [row for _, row in open_rows]


def plan_epoch(
    lengths: Sequence[int], *, seed: int, epoch: int, packing: bool, pack_length: int, rows_per_batch: int
) -> list[MicroBatch]:
    """The epoch's micro-batches in training order; a last incomplete micro-batch is dropped."""
    order = np.random.default_rng([seed, epoch]).permutation(len(lengths)).tolist()
    rows = pack_rows(lengths, order, pack_length) if packing else [[i] for i in order]
    usable = len(rows) - len(rows) % rows_per_batch
    return [rows[i : i + rows_per_batch] for i in range(0, usable, rows_per_batch)]


@dataclass(frozen=True)
class Batch:
    """Model inputs plus what the step counts: loss-carrying tokens, real tokens, sample lengths."""

    inputs: dict[str, torch.Tensor]
    target_tokens: int
    real_tokens: int
    sample_lengths: list[int]

    def to(self, device: torch.device) -> dict[str, torch.Tensor]:
        return {k: v.to(device, non_blocking=True) for k, v in self.inputs.items()}


def _counts(labels: np.ndarray) -> int:
    # transformers shifts labels left by one: the first label of a row is never predicted.
    return int((labels[:, 1:] != IGNORE_INDEX).sum())


def collate_padded(data: TokenSet, batch: MicroBatch, pad_id: int, pad_to_multiple_of: int = 1) -> Batch:
    samples = [data.sample(i) for row in batch for i in row]
    width = max(len(ids) for ids, _ in samples)
    width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = np.full((len(samples), width), pad_id, dtype=np.int64)
    labels = np.full((len(samples), width), IGNORE_INDEX, dtype=np.int64)
    mask = np.zeros((len(samples), width), dtype=np.int64)
    for r, (ids, labs) in enumerate(samples):
        input_ids[r, : len(ids)], labels[r, : len(ids)], mask[r, : len(ids)] = ids, labs, 1
    lengths = [len(ids) for ids, _ in samples]
    inputs = {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(mask),
        "labels": torch.from_numpy(labels),
    }
    return Batch(inputs, _counts(labels), sum(lengths), lengths)


def collate_packed(data: TokenSet, batch: MicroBatch, pad_id: int, pack_length: int) -> Batch:
    input_ids = np.full((len(batch), pack_length), pad_id, dtype=np.int64)
    labels = np.full((len(batch), pack_length), IGNORE_INDEX, dtype=np.int64)
    positions = np.zeros((len(batch), pack_length), dtype=np.int64)
    lengths: list[int] = []
    for r, row in enumerate(batch):
        start = 0
        for index in row:
            ids, labs = data.sample(index)
            end = start + len(ids)
            input_ids[r, start:end], labels[r, start:end] = ids, labs
            positions[r, start:end] = np.arange(len(ids))
            lengths.append(len(ids))
            start = end
        positions[r, start:] = np.arange(pack_length - start)
    inputs = {
        "input_ids": torch.from_numpy(input_ids),
        "position_ids": torch.from_numpy(positions),
        "labels": torch.from_numpy(labels),
    }
    return Batch(inputs, _counts(labels), sum(lengths), lengths)
