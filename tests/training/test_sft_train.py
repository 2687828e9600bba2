"""SFT on a tiny real checkpoint: the loss falls, only response tokens carry it, the output reloads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import sft_settings
from transformers import AutoModelForCausalLM, AutoTokenizer

from agent.prompts import IGNORE_INDEX, PyXRecord, render_pyx, tokenize_example
from training.sft import DataSource, SFTConfig, run_sft, sft_token_set


def test_token_set_masks_bos_and_prompt(tiny_checkpoint: Path, pyx_file: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    data = sft_token_set(tokenizer, [DataSource(path=pyx_file)], max_length=4096)
    first = PyXRecord.model_validate_json(pyx_file.read_text().splitlines()[0])
    expected = tokenize_example(tokenizer, render_pyx(first), 4096)
    ids, labels = data.sample(0)
    assert ids.tolist() == expected.input_ids
    prompt_len = 1 + len(tokenizer.encode(render_pyx(first).prompt, add_special_tokens=False))
    assert (labels[:prompt_len] == IGNORE_INDEX).all()
    assert labels[prompt_len:].tolist() == ids[prompt_len:].tolist()
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id


def _response_only_loss(model_dir: Path, config: SFTConfig, first_step_samples: list[int]) -> float:
    """Mean cross-entropy over response tokens of the step's samples, computed without the trainer."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    data = sft_token_set(tokenizer, config.data, config.max_length)
    total, count = 0.0, 0
    for index in first_step_samples:
        ids, labels = data.sample(index)
        with torch.no_grad():
            logits = model(torch.from_numpy(ids.astype('int64'))[None]).logits[0]
        targets = torch.from_numpy(labels[1:].astype('int64'))
        keep = targets != IGNORE_INDEX
        losses = torch.nn.functional.cross_entropy(logits[:-1][keep], targets[keep], reduction="sum")
        total, count = total + float(losses), count + int(keep.sum())
    return total / count


@pytest.mark.parametrize("packing", [False, True])
def test_sft_loss_falls_and_checkpoint_generates(
    tiny_checkpoint: Path, pyx_file: Path, pyxr_file: Path, tmp_path: Path, packing: bool
) -> None:
    settings = sft_settings(
        tiny_checkpoint, tmp_path / "run", pyx_file, pyxr_file, packing=packing, pack_length=1024,
        micro_batch_size=1 if packing else 2, max_steps=6, plot=packing,
    )
    config = SFTConfig.model_validate(settings)
    result = run_sft(config)

    losses = [m["loss"] for m in result.history]
    assert len(losses) == 6
    assert losses[-1] < 0.8 * losses[0], losses
    from training.sft._collate import plan_epoch

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    data = sft_token_set(tokenizer, config.data, config.max_length)
    plan = plan_epoch(data.lengths, seed=0, epoch=0, packing=packing, pack_length=1024,
                      rows_per_batch=config.micro_batch_size)
    first = [i for row in plan[0] for i in row]
    assert losses[0] == pytest.approx(_response_only_loss(tiny_checkpoint, config, first), rel=1e-4)

    final = result.final_dir
    reloaded = AutoModelForCausalLM.from_pretrained(final)
    assert reloaded.dtype == torch.bfloat16
    tokenizer = AutoTokenizer.from_pretrained(final)
    prompt = tokenizer("def f(x):", return_tensors="pt")
    out = reloaded.generate(**prompt, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 5
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 6
    assert (tmp_path / "run" / "loss.png").exists() == packing


def test_gradient_checkpointing_saves_fewer_activations(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from training.sft import setup_runtime
    from training.sft._model import load_model

    saved = {}
    for enabled in (False, True):
        config = SFTConfig.model_validate(
            sft_settings(tiny_checkpoint, tmp_path, Path("unused.jsonl"), gradient_checkpointing=enabled)
        )
        model = load_model(config, setup_runtime(config)).train()
        count = [0]

        def pack(tensor: torch.Tensor, count: list[int] = count) -> torch.Tensor:
            count[0] += 1
            return tensor

        ids = torch.randint(0, 1000, (1, 32))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
        saved[enabled] = count[0]
    assert saved[True] < saved[False] / 2, saved


def test_datasets_on_disk_read_like_jsonl(tiny_checkpoint: Path, pyxr_file: Path, tmp_path: Path) -> None:
    import json

    import datasets

    rows = [json.loads(line) for line in pyxr_file.read_text().splitlines()]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "pyxr"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    from_disk = sft_token_set(tokenizer, [DataSource(path=tmp_path / "pyxr")], max_length=4096)
    from_jsonl = sft_token_set(tokenizer, [DataSource(path=pyxr_file)], max_length=4096)
    assert from_disk.tokens.tolist() == from_jsonl.tokens.tolist()
    assert from_disk.labels.tolist() == from_jsonl.labels.tolist()


def test_bad_record_names_file_and_line(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from training.sft import DataError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nl": "x", "response": "y"}\n{"nl": "a", "fwd_mnl": "b", "response": "c"}\n')
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    with pytest.raises(DataError, match=r"(?s)bad.jsonl:2: .*exactly one of nl, fwd_mnl, bwd_mnl"):
        sft_token_set(tokenizer, [DataSource(path=bad)], max_length=64)
