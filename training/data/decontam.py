"""Decontamination against the evaluation benchmarks: n-gram overlap, then edit similarity.

The reference texts are the code and problem statements of HumanEval, MBPP (test split), CRUXEval
and HumanEvalFix, read through `evals.loaders`. A candidate is contaminated when a large share of its
token n-grams occurs in one benchmark item (`ngram_ratio`), or when its normalised code is close to
the code of one of the items it shares n-grams with (difflib's ratio >= `edit_ratio`). The n-gram
index keeps the edit comparison to a few candidates per program.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from difflib import SequenceMatcher

from pydantic import BaseModel, ConfigDict, Field

from evals.loaders import load_cruxeval, load_humaneval, load_humanevalfix, load_mbpp

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+|\S")


class DecontamOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int = Field(10, ge=3, description="Token n-gram length.")
    ngram_ratio: float = Field(0.5, gt=0, le=1, description="Share of a candidate's n-grams found in one item.")
    edit_ratio: float = Field(0.8, gt=0, le=1, description="difflib similarity of normalised code.")
    edit_candidates: int = Field(3, ge=1, description="Items (most shared n-grams first) compared by edit similarity.")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def ngrams(words: list[str], n: int) -> set[int]:
    return {hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1)}


class BenchmarkIndex:
    """n-gram -> benchmark items, plus each item's normalised code for the edit comparison."""

    def __init__(self, references: Iterable[tuple[str, str]], options: DecontamOptions | None = None) -> None:
        self.options = options or DecontamOptions()
        self.names: list[str] = []
        self.codes: list[str] = []
        self.index: dict[int, list[int]] = {}
        for name, text in references:
            item = len(self.names)
            self.names.append(name)
            self.codes.append(" ".join(tokens(text)))
            for gram in ngrams(tokens(text), self.options.n):
                self.index.setdefault(gram, []).append(item)

    @classmethod
    def from_benchmarks(cls, options: DecontamOptions | None = None) -> BenchmarkIndex:
        return cls(benchmark_texts(), options)

    def contamination(self, code: str, description: str = "") -> str | None:
        """'ngram:<item>' or 'edit:<item>' for a contaminated candidate, else None."""
        for text in (code, description):
            grams = ngrams(tokens(text), self.options.n)
            if not grams:
                continue
            shared: Counter[int] = Counter(item for gram in grams for item in set(self.index.get(gram, ())))
            if not shared:
                continue
            best, count = shared.most_common(1)[0]
            if count / len(grams) >= self.options.ngram_ratio:
                return f"ngram:{self.names[best]}"
            if text is code:
                normalised = " ".join(tokens(code))
                for item, _ in shared.most_common(self.options.edit_candidates):
                    if SequenceMatcher(None, normalised, self.codes[item], autojunk=False).ratio() >= self.options.edit_ratio:
                        return f"edit:{self.names[item]}"
        return None


def benchmark_texts() -> list[tuple[str, str]]:
    """(item name, text) for every code and problem text of the four benchmarks."""
    texts: list[tuple[str, str]] = []
    for task in load_humaneval():
        texts += [(f"humaneval/{task.task_id}", task.prompt + task.canonical_solution)]
    for task in load_mbpp():
        texts += [(f"mbpp/{task.task_id}", task.canonical_solution), (f"mbpp/{task.task_id}#text", task.description)]
    for task in load_cruxeval():
        texts.append((f"cruxeval/{task.task_id}", task.code))
    for task in load_humanevalfix():
        texts.append((f"humanevalfix/{task.task_id}", task.prompt + (task.buggy_solution or "")))
    return texts
