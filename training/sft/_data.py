"""Training samples: PyX / PyX-R records rendered with SemCoder's templates, or Python source for pretraining.

Samples live in one flat token buffer with offsets (a few hundred MB of source would not fit as lists of ints).
Every sample's first label is ignored, so a sample packed after another never learns to predict across the seam.
"""

from __future__ import annotations

import json
import os
import site
import sysconfig
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.prompts import (
    IGNORE_INDEX,
    PyXRecord,
    PyXRRecord,
    Tokenizer,
    TrainingExample,
    render_pyx,
    render_pyxr,
    tokenize_example,
)
from training.sft._config import DataSource


class DataError(ValueError):
    """A record file that cannot be read as PyX / PyX-R."""


@dataclass(frozen=True)
class TokenSet:
    """Samples as slices of flat arrays: sample i is tokens[offsets[i]:offsets[i+1]]."""

    tokens: np.ndarray  # int32
    labels: np.ndarray  # int32, IGNORE_INDEX where no loss
    offsets: np.ndarray  # int64, len = samples + 1
    truncated: int = 0  # samples cut at max_length

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.offsets[index], self.offsets[index + 1]
        return self.tokens[start:end], self.labels[start:end]

    @classmethod
    def from_samples(cls, samples: Iterable[tuple[Sequence[int], Sequence[int]]], truncated: int = 0) -> TokenSet:
        tokens: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for ids, labs in samples:
            tokens.append(np.asarray(ids, dtype=np.int32))
            labels.append(np.asarray(labs, dtype=np.int32))
        if not tokens:
            raise DataError("no training samples")
        offsets = np.zeros(len(tokens) + 1, dtype=np.int64)
        np.cumsum([len(t) for t in tokens], out=offsets[1:])
        return cls(np.concatenate(tokens), np.concatenate(labels), offsets, truncated)


# --- SFT records ---------------------------------------------------------------------------------------------


def render_record(row: dict[str, Any], fmt: str, where: str) -> TrainingExample:
    try:
        if fmt == "pyxr" or (fmt == "auto" and "fault" in row):
            return render_pyxr(PyXRRecord.model_validate(row))
        return render_pyx(PyXRecord.model_validate(row))
    except ValueError as error:
        raise DataError(f"{where}: not a {fmt if fmt != 'auto' else 'PyX / PyX-R'} record: {error}") from error


def _rows(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    if path.is_dir():
        import datasets

        for index, row in enumerate(datasets.load_from_disk(str(path))):
            yield dict(row), f"{path}[{index}]"
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line), f"{path}:{number}"
            except json.JSONDecodeError as error:
                raise DataError(f"{path}:{number}: invalid JSON: {error}") from error


def read_examples(source: DataSource) -> list[TrainingExample]:
    if not source.path.exists():
        raise DataError(f"data file {source.path} does not exist")
    examples = []
    for row, where in _rows(source.path):
        examples.append(render_record(row, source.format, where))
        if source.limit is not None and len(examples) >= source.limit:
            break
    if not examples:
        raise DataError(f"{source.path}: no records")
    return examples


def sft_token_set(tokenizer: Tokenizer, sources: Sequence[DataSource], max_length: int) -> TokenSet:
    """BOS + prompt (no loss), response + EOS (loss), through the model layer's `tokenize_example`."""
    samples = []
    truncated = 0
    for source in sources:
        for example in read_examples(source):
            tokenized = tokenize_example(tokenizer, example, max_length)
            truncated += tokenized.truncated
            samples.append((tokenized.input_ids, tokenized.labels))
    return TokenSet.from_samples(samples, truncated)


# --- pretraining corpus --------------------------------------------------------------------------------------


def default_corpus_dirs() -> list[Path]:
    """This interpreter's standard library and site-packages: a corpus every machine has."""
    dirs = [sysconfig.get_paths()["stdlib"], *site.getsitepackages()]
    return [Path(d) for d in dict.fromkeys(dirs) if os.path.isdir(d)]


def python_sources(dirs: Sequence[Path], max_bytes: int) -> list[str]:
    """Source texts in a stable order, up to `max_bytes` in total; unreadable files are skipped."""
    texts: list[str] = []
    total = 0
    for root in dirs:
        for path in sorted(Path(root).rglob("*.py")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if not text.strip():
                continue
            texts.append(text)
            total += len(text)
            if total >= max_bytes:
                return texts
    if not texts:
        raise DataError(f"no Python sources under {[str(d) for d in dirs]}")
    return texts


def corpus_token_set(tokenizer: Any, texts: Sequence[str], max_length: int) -> TokenSet:
    """Each file as BOS + source + EOS, cut into chunks of `max_length`; every token but a chunk's first
    carries loss."""
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id

    def chunks() -> Iterator[tuple[list[int], list[int]]]:
        for ids in encoded:
            document = [bos, *ids, eos]
            for start in range(0, len(document) - 1, max_length):
                piece = document[start : start + max_length]
                if len(piece) > 1:
                    yield piece, [IGNORE_INDEX, *piece[1:]]

    return TokenSet.from_samples(chunks())
