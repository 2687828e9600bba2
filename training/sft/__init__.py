"""Supervised fine-tuning (PyX, PyX-R) and causal-LM pretraining of Llama-architecture models.

    from training.sft import SFTConfig, load_config, run_sft
    result = run_sft(load_config(SFTConfig, "training/configs/small-sft.yaml"))

Runs alike in one process, under `torchrun --nproc_per_node N` (FSDP2, gloo on CPU / NCCL on GPU) and on
one GPU with FSDP; writes resumable checkpoints, metrics.jsonl, loss.png and a Hugging Face checkpoint
(`<output_dir>/final`) that vLLM serves as is.
"""

from __future__ import annotations

from typing import Any

from training.sft._collate import Batch, collate_packed, collate_padded, pack_rows, plan_epoch
from training.sft._config import (
    DataSource,
    ModelInit,
    PretrainConfig,
    SFTConfig,
    TrainConfig,
    apply_overrides,
    load_config,
)
from training.sft._data import (
    DataError,
    TokenSet,
    corpus_token_set,
    default_corpus_dirs,
    python_sources,
    render_record,
    sft_token_set,
)
from training.sft._flops import matmul_parameters, mfu, step_flops
from training.sft._model import ensure_model, load_tokenizer
from training.sft._runtime import Runtime, setup_runtime, shutdown
from training.sft._trainer import Trainer, TrainResult, steady_throughput

__all__ = [
    "Batch",
    "DataError",
    "DataSource",
    "ModelInit",
    "PretrainConfig",
    "Runtime",
    "SFTConfig",
    "TokenSet",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "apply_overrides",
    "collate_packed",
    "collate_padded",
    "corpus_token_set",
    "default_corpus_dirs",
    "load_config",
    "matmul_parameters",
    "mfu",
    "pack_rows",
    "plan_epoch",
    "python_sources",
    "render_record",
    "run_pretrain",
    "run_sft",
    "setup_runtime",
    "sft_token_set",
    "shutdown",
    "steady_throughput",
    "step_flops",
]


def run_sft(config: SFTConfig, runtime: Runtime | None = None, model: Any = None) -> TrainResult:
    """Fine-tune on PyX / PyX-R records; `model` continues a module already in memory (same tokenizer)."""
    runtime = runtime or setup_runtime(config)
    ensure_model(config, runtime)
    tokenizer = load_tokenizer(config)
    data = sft_token_set(tokenizer, config.data, config.max_length)
    if runtime.is_main:
        print(
            f"sft: {len(data)} samples, {int(data.lengths.sum()):,} tokens, {data.truncated} cut at "
            f"{config.max_length}",
            flush=True,
        )
    return Trainer(config, data, tokenizer, runtime, model).train()


def run_pretrain(config: PretrainConfig, runtime: Runtime | None = None, model: Any = None) -> TrainResult:
    """Causal LM on Python source (default: this interpreter's stdlib and site-packages)."""
    runtime = runtime or setup_runtime(config)
    ensure_model(config, runtime)
    tokenizer = load_tokenizer(config)
    texts = python_sources(config.corpus or default_corpus_dirs(), config.corpus_max_bytes)
    data = corpus_token_set(tokenizer, texts, config.max_length)
    if runtime.is_main:
        print(
            f"pretrain: {len(texts)} files, {len(data)} chunks, {int(data.lengths.sum()):,} tokens",
            flush=True,
        )
    return Trainer(config, data, tokenizer, runtime, model).train()
