"""Build a small random-init Llama checkpoint with a BPE tokenizer trained on Python's own stdlib.

Tests and the GPU check need a real checkpoint that transformers and vLLM both load, and no model hub is
reachable, so we make one. Self-contained on purpose (torch, transformers, tokenizers only):

    python -m training.tiny_model OUT_DIR [--preset test|gpu] [--no-chat-template]

Its tokenizer carries a ChatML chat template (CHAT_TEMPLATE, as instruct models such as Qwen2.5-Coder-Instruct ship
one), so the chat dialect and /v1/chat/completions work with it too; its markers are plain text to the tokenizer
(no added tokens: the vocabulary is the same with or without the template).
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

# ChatML, the layout of Qwen's templates, with the tokenizer's BOS first (its raw prompts start with BOS too) and EOS
# closing each turn (so a finished answer ends generation as EOS does for a raw prompt). Jinja, rendered by
# transformers' apply_chat_template and by vLLM's chat route alike.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + eos_token + '\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{%- endif %}"
)


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


def build_tokenizer(spec: TinyModelSpec, chat_template: str | None = CHAT_TEMPLATE):
    """A byte-level BPE tokenizer that adds BOS, like the DeepSeek-Coder tokenizer SemCoder uses; with
    `chat_template` (Jinja) for chat messages, None for a base model's tokenizer that has none."""
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
    built = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD)
    if chat_template is not None:
        built.chat_template = chat_template
    return built


class BuiltModel(NamedTuple):
    path: Path
    parameters: int


def build_tiny_model(out_dir: str | Path, spec: TinyModelSpec = PRESETS["test"],
                     chat_template: str | None = CHAT_TEMPLATE) -> BuiltModel:
    """Write tokenizer (with `chat_template`, None for none) and random weights to `out_dir` with `save_pretrained`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    tokenizer = build_tokenizer(spec, chat_template)
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
    parser.add_argument("--no-chat-template", action="store_true", help="a tokenizer without a chat template")
    args = parser.parse_args(argv)
    built = build_tiny_model(args.out_dir, PRESETS[args.preset], None if args.no_chat_template else CHAT_TEMPLATE)
    print(f"saved {built.path}: {built.parameters / 1e6:.1f}M parameters ({args.preset} preset)")


if __name__ == "__main__":
    main()
