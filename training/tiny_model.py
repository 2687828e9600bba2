"""Build a small random-init Llama checkpoint with a BPE tokenizer trained on Python's own stdlib.

Tests and the GPU check need a real checkpoint that transformers and vLLM both load, and no model hub is
reachable, so we make one. Self-contained on purpose (torch, transformers, tokenizers only):

    python -m training.tiny_model OUT_DIR [--preset test|gpu]
"""

from __future__ import annotations

import argparse
import glob
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

BOS, EOS, PAD = "<s>", "</s>", "<pad>"


@dataclass(frozen=True)
class TinyModelSpec:
    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    max_position_embeddings: int = 2048
    corpus_files: int = 40  # stdlib modules the tokenizer learns from
    dtype: str = "float32"
    seed: int = 0


PRESETS = {
    # Fast on two shared CPU cores (a few seconds to build, milliseconds a token).
    "test": TinyModelSpec(),
    # About 100M parameters: enough work per token for GPU throughput numbers to mean something.
    "gpu": TinyModelSpec(
        vocab_size=8192,
        hidden_size=768,
        intermediate_size=2048,
        num_hidden_layers=12,
        num_attention_heads=12,
        max_position_embeddings=4096,
        corpus_files=200,
        dtype="bfloat16",
    ),
}


def corpus_files(count: int) -> list[str]:
    stdlib = sysconfig.get_paths()["stdlib"]
    files = sorted(glob.glob(os.path.join(stdlib, "*.py")))[:count]
    if not files:
        raise RuntimeError(f"no Python sources under {stdlib} to train the tokenizer on")
    return files


def build_tokenizer(spec: TinyModelSpec):
    """A byte-level BPE tokenizer that adds BOS, like the DeepSeek-Coder tokenizer SemCoder uses."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=[BOS, EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train(corpus_files(spec.corpus_files), trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD)


class BuiltModel(NamedTuple):
    path: Path
    parameters: int


def build_tiny_model(out_dir: str | Path, spec: TinyModelSpec = PRESETS["test"]) -> BuiltModel:
    """Write tokenizer and random weights to `out_dir` with `save_pretrained`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = build_tokenizer(spec)
    tokenizer.save_pretrained(out)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        dtype=spec.dtype,
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config).to(getattr(torch, spec.dtype))
    model.save_pretrained(out)
    return BuiltModel(out, sum(p.numel() for p in model.parameters()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="test")
    args = parser.parse_args(argv)
    built = build_tiny_model(args.out_dir, PRESETS[args.preset])
    print(f"saved {built.path}: {built.parameters / 1e6:.1f}M parameters ({args.preset} preset)")


if __name__ == "__main__":
    main()
