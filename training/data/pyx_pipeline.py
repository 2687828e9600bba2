"""PyX synthesis, chunk by chunk: seeds -> dedupe/decontaminate -> execute -> trace -> monologue -> verify.

Monologues are verified twice: their steps against the real trace (step_check: a teacher sample is kept
only when every checkable step agrees; the trace-written ones pass the same check) and their final answer
by a fresh run (verify.py). Each record's meta says how many steps were checked.

Candidates are the corpus's seed functions (rewritten by the teacher when there is one) followed by
generator programs; chunk i is always the same candidates, so a rerun skips the shards already written.
Each verified program gives an NL-to-code record (when it has a description), a forward and a backward
monologue record (different examples where it has two).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from agent.prompts import (
    PyXRecord,
    backward_monologue_instruction,
    forward_monologue_instruction,
    normalise_quotes,
)
from sandbox.executor import ExecutorChoice, open_job_runner, runner_workers
from training.data.corpus import seed_functions
from training.data.decontam import BenchmarkIndex, DecontamOptions
from training.data.dedupe import Deduper, canonical_key
from training.data.executability import InputOptions, filter_programs
from training.data.executor import BatchExecutor, ExecOptions
from training.data.generator import generate_program
from training.data.models import Example, Program, RecordMeta
from training.data.monologue import backward_monologue, forward_monologue, rename_entry
from training.data.stats import ChunkStats, sum_stats, summary_table
from training.data.step_check import StepCheck, check_steps
from training.data.teacher import Teacher, TeacherConfig
from training.data.tracing import trace_rows
from training.data.verify import MonologueTask, pick_monologues
from training.data.writer import DATASETS_MISSING_NOTE, ShardStore

Progress = Callable[[int, int, ChunkStats], None]


class PyXConfig(BaseModel):
    """One PyX run. Every field has a CLI flag of the same name."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(description="Output directory (shards, merged JSONL, dataset).")
    source: Path | None = Field(None, description="Corpus: a directory of .py files (e.g. the standard library).")
    generated: int = Field(0, ge=0, description="Programs from the random CRUXEval-style generator.")
    limit: int | None = Field(None, ge=1, description="Most candidate programs in all (corpus first).")
    teacher: TeacherConfig | None = None
    workers: int | None = Field(None, ge=1, description="Sandbox workers (default: all cores).")
    shard_size: int = Field(200, ge=1, description="Candidates per shard (the unit of resumption).")
    seed: int = Field(0, description="Seed of input generation and the generator's program numbering.")
    backend: str = Field("local", description="Sandbox backend.")
    executor: ExecutorChoice = Field(default_factory=ExecutorChoice,
                                     description="Where the sandbox jobs run (this machine, or a Ray cluster).")
    inputs: InputOptions = InputOptions()
    execution: ExecOptions = ExecOptions()
    decontam: DecontamOptions = DecontamOptions()
    max_response_chars: int = Field(4_000, gt=0, description="Longer monologues are dropped (SemCoder trains at 1216 tokens).")

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


def candidates(config: PyXConfig) -> list[Program]:
    corpus = list(seed_functions(config.source, require_docstring=config.teacher is None)) if config.source else []
    generated = [generate_program(config.seed * 10_000_000 + i) for i in range(config.generated)]
    found = corpus + generated
    return found[: config.limit] if config.limit else found


class PyXRun:
    def __init__(self, config: PyXConfig, teacher: Teacher | None = None) -> None:
        self.config = config
        self.teacher = teacher or (Teacher(config.teacher) if config.teacher else None)
        self.store = ShardStore(config.out, "pyx")
        self.index = BenchmarkIndex.from_benchmarks(config.decontam)
        self.programs = Deduper()
        self.parallel = config.worker_count  # jobs the runner runs at once (all Ray nodes' workers together)

    def run(self, progress: Progress | None = None) -> ChunkStats:
        config = self.config
        pending = candidates(config)
        chunks = [pending[i : i + config.shard_size] for i in range(0, len(pending), config.shard_size)]
        done = self.store.done()
        with open_job_runner(config.executor, workers=config.workers if config.executor.executor == "ray"
                             else config.worker_count, backend=config.backend) as runner:
            self.parallel = runner_workers(runner, config.worker_count)
            executor = BatchExecutor(runner, config.execution)
            for index, chunk in enumerate(chunks):
                if index in done:  # what that chunk saw first still counts as seen, as in an uninterrupted run
                    for key in json.loads(self.store.path("pyx", index, "stats.json").read_text())["dedupe_keys"]:
                        self.programs.first(key)
                else:
                    self._chunk(index, chunk, executor)
                if progress:
                    progress(index + 1, len(chunks), sum_stats(self.store.all_stats()))
        return sum_stats(self.store.all_stats())

    def _chunk(self, index: int, chunk: list[Program], executor: BatchExecutor) -> None:
        stats = ChunkStats(candidates=len(chunk))
        programs = self._seeds(chunk, stats)
        programs = self._screen(programs, stats)
        with stats.stage("execute", len(programs)) as stage:
            outcome = filter_programs(programs, executor, self.config.inputs, self.config.seed * 100_003 + index)
            for reason, count in outcome.drops.items():
                stats.drop("execute", reason, count)
            programs = outcome.kept
            stage.items_out = len(programs)
        records, metas, kept = self._records(programs, executor, stats)
        stats.programs = len(kept)
        self.store.write(index, records, metas, stats.model_dump(mode="json"), kept)

    def _seeds(self, chunk: list[Program], stats: ChunkStats) -> list[Program]:
        if self.teacher is None:
            return chunk
        seeds = [p for p in chunk if p.origin.kind == "corpus"]
        with stats.stage("inspire", len(seeds)) as stage:
            inspired = self.teacher.inspire(seeds)
            stats.drop("inspire", "unreadable_answer", sum(1 for p in inspired if p is None))
            made = [p for p in inspired if p is not None]
            stage.items_out = len(made)
        return made + [p for p in chunk if p.origin.kind != "corpus"]

    def _screen(self, programs: list[Program], stats: ChunkStats) -> list[Program]:
        kept = []
        with stats.stage("decontaminate", len(programs)) as stage:
            for program in programs:
                key = canonical_key(program.code)
                if not self.programs.first(key):
                    stats.drop("decontaminate", "duplicate")
                    continue
                stats.dedupe_keys.append(key)
                hit = self.index.contamination(program.code, program.description)
                if hit:
                    stats.drop("decontaminate", "contaminated_" + hit.split(":")[0])
                    continue
                kept.append(program)
            stage.items_out = len(kept)
        return kept

    def _records(self, programs: list[Program], executor: BatchExecutor,
                 stats: ChunkStats) -> tuple[list[PyXRecord], list[RecordMeta], list[Program]]:
        tasks = _monologue_tasks(programs)
        with stats.stage("trace", len(programs)) as stage:
            traces = trace_rows([(t.code, f"f({t.example.input})") for _, t in tasks], self.parallel,
                                self.config.backend, runner=executor.pool)
            traced = []
            for (owner, task), trace in zip(tasks, traces, strict=True):
                if trace.truncated:
                    stats.drop("trace", "trace_too_long")
                elif trace.return_repr != task.example.output:
                    stats.drop("trace", "trace_disagrees_with_run")
                else:
                    traced.append((owner, task, trace))
            stage.items_out = len({owner for owner, _, _ in traced})
        with stats.stage("monologue", len({owner for owner, _, _ in traced})) as stage:
            written = self._monologues(traced, [p.description for p in programs], executor, stats)
            stage.items_out = len({owner for owner, *_ in written})
        records, metas = [], []
        kept_keys = set()
        for program in programs:
            if program.description:
                records.append(PyXRecord(nl=program.description, response=f"```python\n{program.code.rstrip()}\n```"))
                metas.append(RecordMeta(program=program.key, origin=program.origin, task="nl2code"))
                kept_keys.add(program.key)
        for owner, task, response, source, check in written:
            program = programs[owner]
            instruction = monologue_instruction(task)
            field = "fwd_mnl" if task.direction == "forward" else "bwd_mnl"
            records.append(PyXRecord(**{field: instruction, "response": response}))
            metas.append(RecordMeta(program=program.key, origin=program.origin, task=task.direction,  # type: ignore[arg-type]
                                    monologue=source, steps_checked=check.checked, steps_agreeing=check.agreeing))
            kept_keys.add(program.key)
        for meta in metas:
            stats.records[meta.task] += 1
            stats.sources[f"{meta.origin.kind}/{meta.monologue or 'code'}"] += 1
        return records, metas, [p for p in programs if p.key in kept_keys]

    def _monologues(self, traced: list, descriptions: list[str], executor: BatchExecutor,
                    stats: ChunkStats) -> list[tuple]:
        """(owner, task, response, source, step check) of each monologue that verified."""
        limit = self.config.max_response_chars
        written_by_trace = []
        for owner, task, trace in traced:
            make = forward_monologue if task.direction == "forward" else backward_monologue
            written_by_trace.append(make(task.code, task.example.input, trace, descriptions[owner]))
        tasks = [task for _, task, _ in traced]
        steps: dict[str, StepCheck] = {}  # response -> its step check (a response is checked once)
        from_teacher: list[str | None] = [None] * len(tasks)
        if self.teacher is not None:
            asked = self.teacher.monologues(tasks)
            # Steps first: a sample whose final answer holds but whose steps the trace contradicts is no data.
            screened = [t.model_copy(update={"responses": _step_screen(t.responses, trace, "teacher", steps, stats)})
                        for t, (_, _, trace) in zip(asked, traced, strict=True)]
            from_teacher = pick_monologues(screened, executor)
            stats.drop("monologue", "teacher_rejected", sum(1 for r in from_teacher if r is None))
        fallback = self.teacher is None or self.teacher.config.fallback_to_trace
        # The trace-written ones pass the same checker (they are built from the trace: a failure is a bug).
        written_by_trace = [next(iter(_step_screen([text], trace, "trace", steps, stats)), None)
                            for text, (_, _, trace) in zip(written_by_trace, traced, strict=True)]
        candidates = [t.model_copy(update={"responses": [r] if r is not None else []})
                      for t, r in zip(tasks, written_by_trace, strict=True)]
        checked = pick_monologues(candidates, executor) if fallback else [None] * len(tasks)
        out = []
        for (owner, task, _), teacher_text, trace_text in zip(traced, from_teacher, checked, strict=True):
            response, source = (teacher_text, "teacher") if teacher_text else (trace_text, "trace")
            if response is None:
                stats.drop("monologue", "unverified" if fallback else "no_teacher_answer")
            elif len(response) > limit:
                stats.drop("monologue", "too_long")
            else:
                out.append((owner, task, response, source, steps[response]))
        return out


def _step_screen(responses: list[str], trace, source: str, steps: dict[str, StepCheck],
                 stats: ChunkStats) -> list[str]:
    """The responses whose every checkable step agrees with `trace`; counts go to stats.steps[source ...]."""
    kept = []
    for response in responses:
        result = steps.get(response) or check_steps(response, trace)
        steps[response] = result
        stats.steps[f"{source}_samples"] += 1
        stats.steps[f"{source}_steps_checked"] += result.checked
        stats.steps[f"{source}_steps_agreeing"] += result.agreeing
        if result.ok:
            kept.append(response)
        else:
            stats.steps[f"{source}_samples_rejected"] += 1
    return kept


def prompt_piece(text: str) -> str:
    """Code or a value as CRUXEval prompts show it: ' becomes ", unless a " is already there (that would change it)."""
    return text if '"' in text else normalise_quotes(text)


def monologue_instruction(task: MonologueTask) -> str:
    """The forward/backward instruction in the quote style of CRUXEval (what the model sees at eval time)."""
    code = prompt_piece(task.code.rstrip("\n"))
    if task.direction == "forward":
        return forward_monologue_instruction(code, prompt_piece(task.example.input))
    return backward_monologue_instruction(code, prompt_piece(task.example.output))


def _monologue_tasks(programs: list[Program]) -> list[tuple[int, MonologueTask]]:
    """A forward task on the first example and a backward one on the second (or the first again)."""
    tasks = []
    for owner, program in enumerate(programs):
        code = rename_entry(program.code, program.entry)
        examples = program.examples
        forward: Example = examples[0]
        backward: Example = examples[1] if len(examples) > 1 else examples[0]
        tasks.append((owner, MonologueTask(code=code, example=forward, direction="forward")))
        tasks.append((owner, MonologueTask(code=code, example=backward, direction="backward")))
    return tasks


def run_pyx(config: PyXConfig, progress: Progress | None = None, teacher: Teacher | None = None) -> tuple[ChunkStats, str]:
    """Runs (or resumes) PyX synthesis, merges the shards and returns the stats and the printed summary."""
    start = time.perf_counter()
    stats = PyXRun(config, teacher).run(progress)
    _, dataset = ShardStore(config.out, "pyx").finalize()
    summary = summary_table(f"PyX summary ({config.out})", stats, time.perf_counter() - start)
    return stats, summary if dataset else summary + "\n" + DATASETS_MISSING_NOTE.format(name="pyx")
