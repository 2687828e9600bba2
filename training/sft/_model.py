"""Loading the model and tokenizer a run trains, building them from scratch first when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from training.sft._config import ModelInit, TrainConfig
from training.sft._runtime import Runtime, main_process_first, shard_model


def build_from_scratch(path: Path, init: ModelInit, dtype: str) -> None:
    from training.tiny_model import TinyModelSpec, build_tiny_model

    spec = TinyModelSpec(
        vocab_size=init.vocab_size,
        hidden_size=init.hidden_size,
        intermediate_size=init.intermediate_size,
        num_hidden_layers=init.num_hidden_layers,
        num_attention_heads=init.num_attention_heads,
        max_position_embeddings=init.max_position_embeddings,
        corpus_files=init.tokenizer_corpus_files,
        dtype=dtype,
        seed=init.seed,
    )
    build_tiny_model(path, spec)


def ensure_model(config: TrainConfig, runtime: Runtime) -> None:
    path = Path(config.model)
    if config.init is None or (path / "config.json").exists():
        return
    with main_process_first(runtime):
        if runtime.is_main:
            build_from_scratch(path, config.init, "float32" if config.precision == "fp32" else "bfloat16")


def load_tokenizer(config: TrainConfig) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.model)
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError(f"{config.model}: the tokenizer needs BOS and EOS tokens (SemCoder's format uses both)")
    return tokenizer


def pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def load_model(config: TrainConfig, runtime: Runtime) -> Any:
    """Weights in fp32 (bf16 with precision='bf16'), on the device, checkpointed, sharded, compiled as asked."""
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if config.precision == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        config.model, dtype=dtype, attn_implementation=config.attn_implementation
    )
    model.config.use_cache = False
    if config.gradient_checkpointing:
        enable_activation_checkpointing(model)
    model.to(runtime.device)
    if runtime.fsdp:
        shard_model(model, runtime)
    return model


def enable_activation_checkpointing(model: Any) -> None:
    """Non-reentrant checkpointing per decoder layer (composes with FSDP2 and torch.compile)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x; the old name warns there
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def compile_model(model: torch.nn.Module) -> None:
    """In place, so state-dict keys and the module object stay those of the plain model."""
    if getattr(model, "_compiled_call_impl", None) is None:
        model.compile()
