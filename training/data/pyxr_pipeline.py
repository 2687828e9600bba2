"""PyX-R synthesis from a PyX output directory: mutate -> trace -> rationale -> verify, one shard per PyX shard.

Only programs with a problem statement and at least two verified examples are used (the fix must
be checked on more than the failing test). Shards already written are skipped on a rerun.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from agent.prompts import PyXRRecord, failed_test
from sandbox.executor import ExecutorChoice, open_job_runner, runner_workers
from training.data import pyxr
from training.data.executor import BatchExecutor, ExecOptions
from training.data.loaders import read_programs
from training.data.models import RecordMeta
from training.data.stats import ChunkStats, sum_stats, summary_table
from training.data.teacher import Teacher, TeacherConfig
from training.data.tracing import trace_rows
from training.data.verify import FixTask, pick_fixes
from training.data.writer import DATASETS_MISSING_NOTE, ShardStore

Progress = Callable[[int, int, ChunkStats], None]


class PyXRConfig(BaseModel):
    """One PyX-R run. Every field has a CLI flag of the same name."""

    model_config = ConfigDict(extra="forbid")

    pyx: Path = Field(description="A PyX output directory (its shards/programs-*.jsonl are the input).")
    out: Path = Field(description="Output directory.")
    limit: int | None = Field(None, ge=1, description="Most programs to take from the PyX output.")
    teacher: TeacherConfig | None = None
    workers: int | None = Field(None, ge=1, description="Sandbox workers (default: all cores).")
    seed: int = Field(0, description="Seed of the mutant sampling.")
    backend: str = Field("local", description="Sandbox backend.")
    executor: ExecutorChoice = Field(default_factory=ExecutorChoice,
                                     description="Where the sandbox jobs run (this machine, or a Ray cluster).")
    min_examples: int = Field(2, ge=1, description="Programs with fewer verified examples are skipped.")
    mutant_execution: ExecOptions = ExecOptions(call_timeout_s=0.25, item_timeout_s=3.0)
    execution: ExecOptions = ExecOptions()
    max_response_chars: int = Field(7_000, gt=0, description="Longer rationales are dropped (PyX-R trains at 2048 tokens).")


class PyXRRun:
    def __init__(self, config: PyXRConfig, teacher: Teacher | None = None) -> None:
        self.config = config
        self.teacher = teacher or (Teacher(config.teacher) if config.teacher else None)
        self.store = ShardStore(config.out, "pyx_r")
        self.workers = config.workers or os.cpu_count() or 1
        self.parallel = self.workers  # jobs the runner runs at once (all Ray nodes' workers together)
        self.runner = None

    def run(self, progress: Progress | None = None) -> ChunkStats:
        shards = list(read_programs(self.config.pyx))
        done = self.store.done()
        taken = 0
        ray = self.config.executor.executor == "ray"
        with open_job_runner(self.config.executor, workers=self.config.workers if ray else self.workers,
                             backend=self.config.backend) as runner:
            self.runner, self.parallel = runner, runner_workers(runner, self.workers)
            executors = BatchExecutor(runner, self.config.mutant_execution), BatchExecutor(runner, self.config.execution)
            for position, (index, programs) in enumerate(shards):
                if self.config.limit is not None:
                    programs = programs[: max(0, self.config.limit - taken)]
                taken += len(programs)
                if index not in done and programs:
                    self._chunk(index, programs, *executors)
                if progress:
                    progress(position + 1, len(shards), sum_stats(self.store.all_stats()))
        return sum_stats(self.store.all_stats())

    def _chunk(self, index: int, programs, mutant_executor: BatchExecutor, executor: BatchExecutor) -> None:
        stats = ChunkStats(candidates=len(programs))
        usable = [p for p in programs if p.description and len(p.examples) >= self.config.min_examples]
        stats.drop("select", "too_few_examples_or_no_problem", len(programs) - len(usable))
        with stats.stage("mutate", len(usable)) as stage:
            bugs, drops = pyxr.find_bugs(usable, mutant_executor, self.config.seed * 100_003 + index)
            for reason, count in drops.items():
                stats.drop("mutate", reason, count)
            stage.items_out = len(bugs)
        with stats.stage("trace", len(bugs)) as stage:
            rows = [row for bug in bugs for row in pyxr.trace_rows(bug)]
            # Cold sandboxes here, as before, unless the jobs go to a cluster (whose nodes hold the sandboxes).
            traces = trace_rows(rows, self.parallel, self.config.backend,
                                runner=self.runner if self.config.executor.executor == "ray" else None)
            pairs = [(bug, traces[2 * i], traces[2 * i + 1]) for i, bug in enumerate(bugs)]
            traced = [(b, t, c) for b, t, c in pairs if not t.truncated and c.return_repr == b.failing.output]
            stats.drop("trace", "trace_too_long_or_disagrees", len(pairs) - len(traced))
            stage.items_out = len(traced)
        with stats.stage("rationale", len(traced)) as stage:
            chosen = self._rationales(traced, executor, stats)
            stage.items_out = len(chosen)
        records, metas = [], []
        for bug, response, source in chosen:
            records.append(PyXRRecord(fault=pyxr.fault_text(bug), response=response))
            metas.append(RecordMeta(program=bug.program.key, origin=bug.program.origin, task="refine",
                                    monologue=source, bug=bug.mutant.description))
            stats.records["refine"] += 1
            stats.sources[f"{bug.program.origin.kind}/{source}"] += 1
        stats.programs = len(records)
        self.store.write(index, records, metas, stats.model_dump(mode="json"))

    def _rationales(self, traced: list, executor: BatchExecutor, stats: ChunkStats) -> list[tuple]:
        """(bug, response, source) for each bug whose rationale's fix verified."""
        def task(bug, responses):
            return FixTask(entry=bug.program.entry, buggy=bug.mutant.source, failing=bug.failing,
                           examples=bug.program.examples, responses=responses)

        from_teacher: list[str | None] = [None] * len(traced)
        if self.teacher is not None:
            faults = [(b.program.description, b.mutant.source.rstrip("\n"),
                       failed_test(f"{b.program.entry}({b.failing.input})", b.failing.output)) for b, _, _ in traced]
            answers = self.teacher.rationales(faults)
            from_teacher = pick_fixes([task(b, a) for (b, _, _), a in zip(traced, answers, strict=True)], executor)
            stats.drop("rationale", "teacher_rejected", sum(1 for r in from_teacher if r is None))
        fallback = self.teacher is None or self.teacher.config.fallback_to_trace
        written = [task(b, [pyxr.rationale(b, t, c)]) for b, t, c in traced] if fallback else []
        checked = pick_fixes(written, executor) if fallback else [None] * len(traced)
        out = []
        for (bug, _, _), teacher_text, trace_text in zip(traced, from_teacher, checked, strict=True):
            response, source = (teacher_text, "teacher") if teacher_text else (trace_text, "trace")
            if response is None:
                stats.drop("rationale", "fix_not_verified")
            elif len(response) > self.config.max_response_chars:
                stats.drop("rationale", "too_long")
            else:
                out.append((bug, response, source))
        return out


def run_pyxr(config: PyXRConfig, progress: Progress | None = None,
             teacher: Teacher | None = None) -> tuple[ChunkStats, str]:
    start = time.perf_counter()
    stats = PyXRRun(config, teacher).run(progress)
    _, dataset = ShardStore(config.out, "pyx_r").finalize()
    summary = summary_table(f"PyX-R summary ({config.out})", stats, time.perf_counter() - start)
    return stats, summary if dataset else summary + "\n" + DATASETS_MISSING_NOTE.format(name="pyx_r")
