"""Packing: samples sharing a row see nothing of each other, so packed and separate losses agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import DATA, sft_settings
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.sft import DataSource, collate_packed, collate_padded, pack_rows, sft_token_set


@pytest.fixture(scope="module")
def samples(tiny_checkpoint: Path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    sources = [DataSource(path=DATA / "pyx_sample.jsonl", limit=3), DataSource(path=DATA / "pyxr_sample.jsonl", limit=1)]
    return sft_token_set(tokenizer, sources, max_length=256), tokenizer.pad_token_id


def _summed_loss(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    one = torch.tensor(1.0)  # num_items_in_batch=1: the sum of token losses, not their mean
    return model(**inputs, num_items_in_batch=one, use_cache=False).loss


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_loss_is_sum_of_separate_losses(tiny_checkpoint: Path, samples, attention: str) -> None:
    data, pad = samples
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, dtype=torch.float32, attn_implementation=attention)
    everything = list(range(len(data)))
    packed = collate_packed(data, [everything], pad, pack_length=int(data.lengths.sum()) + 7)
    separate = [collate_padded(data, [[i]], pad) for i in everything]
    with torch.no_grad():
        packed_loss = _summed_loss(model, packed.inputs)
        separate_loss = sum(_summed_loss(model, b.inputs) for b in separate)
        padded_loss = _summed_loss(model, collate_padded(data, [[i] for i in everything], pad).inputs)
    assert packed.target_tokens == sum(b.target_tokens for b in separate)
    assert packed_loss.item() == pytest.approx(separate_loss.item(), rel=1e-5)
    assert padded_loss.item() == pytest.approx(separate_loss.item(), rel=1e-5)


def test_changing_one_sample_leaves_the_others_logits(tiny_checkpoint: Path, samples) -> None:
    data, pad = samples
    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, dtype=torch.float32)
    batch = collate_packed(data, [[0, 1]], pad, pack_length=int(data.lengths[:2].sum()))
    first = int(data.lengths[0])
    changed = {k: v.clone() for k, v in batch.inputs.items()}
    changed["input_ids"][0, 1:first] = (changed["input_ids"][0, 1:first] + 11) % 1000
    # use_cache=False as the trainer passes it: with a cache, transformers does not read packing from positions.
    with torch.no_grad():
        before = model(input_ids=batch.inputs["input_ids"], position_ids=batch.inputs["position_ids"], use_cache=False)
        after = model(input_ids=changed["input_ids"], position_ids=changed["position_ids"], use_cache=False)
    before, after = before.logits, after.logits
    assert not torch.allclose(before[0, :first], after[0, :first])
    torch.testing.assert_close(before[0, first:], after[0, first:])


def test_pack_rows_fills_rows_and_keeps_every_sample() -> None:
    lengths = [700, 300, 900, 100, 1000, 24]
    rows = pack_rows(lengths, range(len(lengths)), pack_length=1024)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 1024 for row in rows)
    assert len(rows) == 3


def test_every_step_gets_full_micro_batches_across_epochs(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Packing makes epochs differ in length; steps still take complete slices of one stream of epochs."""

    from training.sft import SFTConfig, Trainer, plan_epoch, setup_runtime

    settings = sft_settings(
        tiny_checkpoint, tmp_path, DATA / "pyx_sample.jsonl", DATA / "pyxr_sample.jsonl",
        packing=True, pack_length=512, micro_batch_size=2, gradient_accumulation_steps=2,
    )
    config = SFTConfig.model_validate(settings)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    data = sft_token_set(tokenizer, config.data, config.max_length)
    trainer = Trainer(config, data, tokenizer, setup_runtime(config))
    plans = [plan_epoch(data.lengths, seed=0, epoch=e, packing=True, pack_length=512, rows_per_batch=2) for e in range(4)]
    assert len({len(p) for p in plans}) > 1, "the sample data should give epochs of different lengths"
    stream = [batch for plan in plans for batch in plan]
    steps = [trainer._step_micro_batches(s) for s in range(len(stream) // 2 - 1)]
    assert all(len(step) == 2 for step in steps)
    assert [b for step in steps for b in step] == stream[: 2 * len(steps)]
