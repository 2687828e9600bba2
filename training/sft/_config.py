"""Typed training configuration: one pydantic model per job kind, read from YAML or JSON files.

Like TRL's SFTConfig, a config says everything a run needs; `semcoder train sft --config X.yaml` runs it and
`--set key=value` overrides single fields (e.g. `--set max_steps=20`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

Precision = Literal["bf16-autocast", "bf16", "fp32"]
Distributed = Literal["auto", "fsdp", "none"]
RecordFormat = Literal["auto", "pyx", "pyxr"]


class DataSource(BaseModel):
    """One set of training records: a JSONL file or a `datasets` dataset saved with `save_to_disk`."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="JSONL file, or a directory written by `datasets.Dataset.save_to_disk`.")
    format: RecordFormat = Field(
        "auto",
        description="pyx: {nl|fwd_mnl|bwd_mnl, response}; pyxr: {fault, response}; auto: decided per record "
        "by its keys.",
    )
    limit: int | None = Field(None, ge=1, description="Use only the first `limit` records (smoke runs).")


class ModelInit(BaseModel):
    """A Llama model built from scratch (random weights and a BPE tokenizer trained on Python's stdlib)."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(8192, ge=256, description="BPE vocabulary size, special tokens included.")
    hidden_size: int = Field(768, ge=8)
    intermediate_size: int = Field(2048, ge=8)
    num_hidden_layers: int = Field(12, ge=1)
    num_attention_heads: int = Field(12, ge=1)
    max_position_embeddings: int = Field(4096, ge=16)
    tokenizer_corpus_files: int = Field(200, ge=1, description="Stdlib modules the tokenizer learns from.")
    seed: int = Field(0, description="Seed of the random weights.")


class TrainConfig(BaseModel):
    """Fields shared by pretraining and SFT: the model, the optimisation, the runtime."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(
        description="Hugging Face checkpoint (a directory or hub id) to start from; with `init`, the directory "
        "where the new model is built first (kept if it already exists)."
    )
    init: ModelInit | None = Field(None, description="Build `model` from scratch before training.")
    output_dir: Path = Field(description="Checkpoints, metrics.jsonl, loss.png and the final HF checkpoint.")

    max_length: int = Field(1216, ge=8, description="Tokens per sample; longer samples are cut.")
    packing: bool = Field(
        False,
        description="Pack samples into rows of `pack_length` tokens; each sample attends only to itself "
        "(position ids restart per sample, which transformers turns into a block-diagonal mask).",
    )
    pack_length: int = Field(2048, ge=8, description="Row length when packing (>= max_length).")
    micro_batch_size: int = Field(
        4, ge=1, description="Samples per forward pass per process (rows of `pack_length` when packing)."
    )
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    epochs: float = Field(1.0, gt=0, description="Passes over the data (fractions allowed).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps.")
    time_budget_s: float | None = Field(
        None,
        gt=0,
        description="Wall-clock budget of the training loop; the LR schedule is refitted to the steps that "
        "fit once `budget_probe_steps` have been timed.",
    )
    budget_probe_steps: int = Field(5, ge=1, description="Steps timed before refitting to the time budget.")

    learning_rate: float = Field(5e-5, gt=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="Cosine floor as a fraction of the peak LR.")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Fraction of steps of linear warmup.")
    warmup_steps: int | None = Field(None, ge=0, description="Overrides warmup_ratio when set.")
    weight_decay: float = Field(0.0, ge=0)
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.95, ge=0, lt=1)
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip gradients to this global norm.")

    precision: Precision = Field(
        "bf16-autocast",
        description="bf16-autocast: fp32 weights and optimizer, bf16 matmuls; bf16: weights in bf16; fp32.",
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward.")
    compile: bool = Field(False, description="torch.compile the model (static shapes: use packing).")
    attn_implementation: str = Field(
        "sdpa", description="transformers attention: sdpa, eager, flex_attention, flash_attention_2."
    )
    distributed: Distributed = Field(
        "auto",
        description="fsdp: FSDP2 (sharded parameters, gradients, optimizer state); auto: fsdp when launched "
        "by torchrun with several processes; none: one process.",
    )
    device: str = Field("auto", description="auto (cuda when available), cpu or cuda.")
    peak_tflops: float | None = Field(
        None, gt=0, description="The device's dense bf16 ceiling per process, for MFU (H200: about 790)."
    )
    seed: int = Field(0, description="Seeds data order.")

    logging_steps: int = Field(1, ge=1, description="Steps between metric lines.")
    save_steps: int | None = Field(None, ge=1, description="Steps between resumable checkpoints.")
    save_total_limit: int = Field(2, ge=1, description="Resumable checkpoints kept.")
    resume_from: str | None = Field(
        None, description="'latest' (newest checkpoint in output_dir, if any) or a checkpoint directory."
    )
    save_dtype: Literal["bfloat16", "float32", "float16"] = Field(
        "bfloat16", description="dtype of the final Hugging Face checkpoint."
    )
    plot: bool = Field(True, description="Write loss.png (needs matplotlib).")

    @model_validator(mode="after")
    def _pack_fits(self) -> TrainConfig:
        if self.packing and self.pack_length < self.max_length:
            raise ValueError(f"pack_length ({self.pack_length}) must be >= max_length ({self.max_length})")
        return self


class SFTConfig(TrainConfig):
    """Supervised fine-tuning on PyX / PyX-R records with the loss on the response only."""

    data: list[DataSource] = Field(min_length=1, description="Record files, concatenated then shuffled.")


class PretrainConfig(TrainConfig):
    """Causal language modelling on Python source files (every token carries loss)."""

    corpus: list[Path] = Field(
        default_factory=list,
        description="Directories searched recursively for *.py; empty: this interpreter's stdlib and "
        "site-packages.",
    )
    corpus_max_bytes: int = Field(64_000_000, ge=1, description="Stop reading source after this many bytes.")
    learning_rate: float = Field(3e-4, gt=0)
    warmup_ratio: float = Field(0.02, ge=0, lt=1)
    weight_decay: float = Field(0.1, ge=0)
    max_length: int = Field(2048, ge=8, description="Files are cut into chunks of this many tokens.")


C = TypeVar("C", bound=TrainConfig)


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    elif path.suffix == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"config {path}: use a .yaml, .yml or .json file")
    if not isinstance(data, dict):
        raise ValueError(f"config {path}: expected a mapping at the top level")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`key=value` or `a.b=value`; values are parsed as JSON when they parse, else kept as strings."""
    data = json.loads(json.dumps(data, default=str))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected key=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return data


def load_config(
    kind: type[C], path: str | Path, overrides: list[str] | tuple[str, ...] = ()
) -> C:
    """Read a config file, apply overrides, validate. Relative paths in the file stay relative to the CWD."""
    return kind.model_validate(apply_overrides(read_config_file(path), list(overrides)))
