"""Per-chunk counts and timings, and the summary table a run prints (kept, dropped by reason, throughput)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import BaseModel, Field


class StageStat(BaseModel):
    items_in: int = 0
    items_out: int = 0
    seconds: float = 0.0


class ChunkStats(BaseModel):
    """What one shard's work did; stored next to the shard and summed for the summary."""

    candidates: int = 0
    programs: int = 0
    stages: dict[str, StageStat] = Field(default_factory=dict)
    drops: Counter[str] = Field(default_factory=Counter)
    records: Counter[str] = Field(default_factory=Counter)
    sources: Counter[str] = Field(default_factory=Counter)
    steps: Counter[str] = Field(default_factory=Counter, description="Step verification of monologues, by source: "
                                "samples, samples rejected, steps checked, steps agreeing.")
    dedupe_keys: list[str] = Field(default_factory=list, description="Programs first seen in this chunk (resume).")

    @contextmanager
    def stage(self, name: str, items_in: int) -> Iterator[StageStat]:
        stat = self.stages.setdefault(name, StageStat())
        stat.items_in += items_in
        start = time.perf_counter()
        try:
            yield stat
        finally:
            stat.seconds += time.perf_counter() - start

    def drop(self, stage: str, reason: str, count: int = 1) -> None:
        if count:
            self.drops[f"{stage}:{reason}"] += count

    def merge(self, other: ChunkStats) -> None:
        self.candidates += other.candidates
        self.programs += other.programs
        for name, stat in other.stages.items():
            mine = self.stages.setdefault(name, StageStat())
            mine.items_in += stat.items_in
            mine.items_out += stat.items_out
            mine.seconds += stat.seconds
        self.drops.update(other.drops)
        self.records.update(other.records)
        self.sources.update(other.sources)
        self.steps.update(other.steps)


def sum_stats(all_stats: list[dict]) -> ChunkStats:
    total = ChunkStats()
    for raw in all_stats:
        total.merge(ChunkStats.model_validate(raw))
    return total


def summary_table(title: str, stats: ChunkStats, wall_s: float, unit: str = "programs") -> str:
    lines = [title, f"{'stage':<14}{'in':>8}{'out':>8}{'seconds':>10}{unit + '/min':>16}"]
    for name, stat in stats.stages.items():
        rate = stat.items_in / stat.seconds * 60 if stat.seconds > 0 else float("inf")
        lines.append(f"{name:<14}{stat.items_in:>8}{stat.items_out:>8}{stat.seconds:>10.1f}{rate:>16.0f}")
    total = sum(stats.records.values())
    lines.append(f"candidates {stats.candidates}, verified programs {stats.programs}, wall {wall_s:.1f} s")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(stats.records.items()))
    lines.append(f"records kept: {total} ({kinds})")
    lines.append("record sources: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.sources.items())))
    if stats.steps:
        lines.append("step checks: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.steps.items())))
    lines.append("dropped by reason:")
    lines.extend(f"  {reason:<44}{count:>8}" for reason, count in sorted(stats.drops.items()))
    if not stats.drops:
        lines.append("  (none)")
    return "\n".join(lines)
