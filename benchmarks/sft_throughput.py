"""Throughput of a plain transformers training step, the baseline our SFT step is compared with.

A plain step: the checkpoint loaded as is (sdpa attention, fp32 weights, bf16 autocast), fused AdamW, eager,
`model(input_ids, attention_mask, labels).loss.backward()`, one optimizer step. Two inputs: right-padded
batches of the real PyX / PyX-R samples (what SFT without packing feeds it), and full rows of random tokens
(no padding at all: the issue's reference measurement). MFU counts only real tokens (training.sft._flops).

    python benchmarks/sft_throughput.py CHECKPOINT --data data/pyx.jsonl [--device cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.sft import DataSource, collate_padded, matmul_parameters, mfu, sft_token_set, step_flops

WARMUP_STEPS = 2


class PlainStepResult(BaseModel):
    name: str
    steps: int
    tokens_per_s: float
    mfu: float | None
    padding_fraction: float
    final_loss: float


def _autocast(device: str, precision: str) -> contextlib.AbstractContextManager[object]:
    if precision == "bf16-autocast":
        return torch.autocast(device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time_steps(
    model: torch.nn.Module,
    batches: Iterator[tuple[dict[str, torch.Tensor], list[int]]],
    *,
    name: str,
    steps: int,
    device: str,
    precision: str,
    peak_tflops: float | None,
) -> PlainStepResult:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device == "cuda")
    params = matmul_parameters(model)
    config = model.config
    seconds = flops = 0.0
    real = rows = 0
    loss = torch.zeros(())
    for index in range(WARMUP_STEPS + steps):
        inputs, lengths = next(batches)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        _sync(device)
        started = time.perf_counter()
        with _autocast(device, precision):
            loss = model(**inputs, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = loss.detach()
        _sync(device)
        if index >= WARMUP_STEPS:
            seconds += time.perf_counter() - started
            real += sum(lengths)
            rows += inputs["input_ids"].numel()
            flops += step_flops(params, config.num_hidden_layers, config.hidden_size, lengths)
    return PlainStepResult(
        name=name,
        steps=steps,
        tokens_per_s=real / seconds,
        mfu=mfu(flops, seconds, peak_tflops),
        padding_fraction=1 - real / rows,
        final_loss=loss.item(),
    )


def _padded_batches(checkpoint: Path, data: list[dict[str, str]], batch: int, max_length: int) -> Callable:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    samples = sft_token_set(tokenizer, [DataSource(path=Path(d["path"])) for d in data], max_length)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def batches() -> Iterator[tuple[dict[str, torch.Tensor], list[int]]]:
        rng = np.random.default_rng(0)
        while True:
            chosen = rng.choice(len(samples), size=batch, replace=len(samples) < batch)
            collated = collate_padded(samples, [[int(i)] for i in chosen], pad)
            yield collated.inputs, collated.sample_lengths

    return batches


def _random_rows(vocab: int, batch: int, length: int) -> Iterator[tuple[dict[str, torch.Tensor], list[int]]]:
    generator = torch.Generator().manual_seed(0)
    while True:
        ids = torch.randint(0, vocab, (batch, length), generator=generator)
        yield {"input_ids": ids, "labels": ids}, [length] * batch


def plain_step_throughput(
    checkpoint: Path,
    data: list[dict[str, str]],
    *,
    device: str,
    batch: int,
    steps: int,
    peak_tflops: float | None,
    row_length: int = 2048,
    precision: str = "bf16-autocast",
) -> list[PlainStepResult]:
    """Both plain variants on a fresh fp32 copy of `checkpoint` (weights change between them: irrelevant)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32, attn_implementation="sdpa")
    model.to(device)
    common = {"steps": steps, "device": device, "precision": precision, "peak_tflops": peak_tflops}
    padded = _time_steps(
        model,
        _padded_batches(checkpoint, data, batch, row_length)(),
        name="plain transformers step, padded PyX batches",
        **common,
    )
    rows = _time_steps(
        model,
        _random_rows(model.config.vocab_size, batch, row_length),
        name=f"plain transformers step, {row_length}-token rows",
        **common,
    )
    return [padded, rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--row-length", type=int, default=2048)
    parser.add_argument("--peak-tflops", type=float, default=790.0)
    args = parser.parse_args()
    results = plain_step_throughput(
        args.checkpoint,
        [{"path": str(p)} for p in args.data],
        device=args.device,
        batch=args.batch,
        steps=args.steps,
        peak_tflops=args.peak_tflops if args.device == "cuda" else None,
        row_length=args.row_length,
    )
    print(json.dumps([r.model_dump() for r in results], indent=2))
    print(f"{'run':<48} {'tokens/s':>10} {'MFU':>7} {'pad':>6}")
    for r in results:
        shown = "-" if r.mfu is None else f"{r.mfu:.1%}"
        print(f"{r.name:<48} {r.tokens_per_s:>10,.0f} {shown:>7} {r.padding_fraction:>6.1%}")


if __name__ == "__main__":
    main()
