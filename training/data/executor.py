"""Batch execution of many (program, inputs) items in the sandbox, several items per sandbox job.

One sandbox job (sandbox/job.py) runs a whole batch: its program, `_exec_driver.py`, starts
`_exec_child.py` once per hash seed and the child runs every item's entry function on all its inputs, so
a program costs a few milliseconds instead of a process start per input. The driver sends one record per
hash seed (that seed's runs of every item) on the job's channel; the children report to the driver with
the same keyed frames. Jobs go to a `sandbox.Pool`, one per core.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sandbox import Job, JobResult, JobRunner, SandboxError
from sandbox.job import outer_limits

CallStatus = Literal[
    "ok", "error", "timeout", "side_effect", "clock", "randomness", "output_flood", "unrepresentable", "too_large",
    "bad_input", "crashed", "skipped",
]
_HERE = Path(__file__).parent
_CHILD = "_exec_child.py"
_JOB_EXTRA_MB = 512  # the driver's own interpreter on top of the child's address-space cap
_OUTPUT_BYTES = 64_000_000  # bounds what one job may report; far above any honest batch


class ExecOptions(BaseModel):
    """Budgets of the batch executor (every item of a job gets the same)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_timeout_s: float = Field(1.0, gt=0, description="Wall budget of one call (module load: 4x).")
    item_timeout_s: float = Field(8.0, gt=0, description="Budget of one item (all its calls) before its child is killed.")
    repr_chars: int = Field(1_000, gt=0, description="Longest output repr kept; longer outputs are `too_large`.")
    memory_mb: int = Field(512, gt=0, description="Address-space cap of the child that runs the programs.")
    recursion_limit: int = Field(400, gt=50, description="Recursion limit inside the child.")
    items_per_job: int = Field(24, gt=0, description="Items sent to one sandbox job.")
    coverage: bool = Field(True, description="Record the lines each call ran (behaviour dedupe, localization).")
    output_chars: int = Field(10_000, ge=0, description="What one call (or the module load) may print; past it "
                                                        "the call is `output_flood`.")


class ExecItem(BaseModel):
    code: str
    entry: str
    calls: list[str] = Field(description="Argument lists as Python literals, e.g. \"[1, 2], 'a'\".")


class CallResult(BaseModel):
    status: CallStatus
    output: str | None = None
    error: str | None = None
    lines: list[int] = Field(default_factory=list)
    printed: bool = False


class ItemRun(BaseModel):
    """One run of one item in one child: how its module loaded and each call's outcome."""

    load: CallResult
    calls: list[CallResult]

    @property
    def loaded(self) -> bool:
        return self.load.status == "ok"

    def signature(self) -> list[tuple[str, str | None]]:
        return [(c.status, c.output) for c in self.calls]


class ExecutorError(SandboxError):
    """The batch harness itself failed (never the program under test)."""


class BatchExecutor:
    """Runs items on a shared sandbox Pool; `runs(items, seeds)` gives one ItemRun per item per seed."""

    def __init__(self, pool: JobRunner, options: ExecOptions | None = None) -> None:
        self.pool = pool
        self.options = options or ExecOptions()

    def runs(self, items: Sequence[ExecItem], hash_seeds: Sequence[int] = (1,)) -> list[list[ItemRun]]:
        size = self.options.items_per_job
        batches = [list(items[i : i + size]) for i in range(0, len(items), size)]
        futures = [self.pool.submit_job(self.job(batch, hash_seeds)) for batch in batches]
        out: list[list[ItemRun]] = []
        for future, batch in zip(futures, batches, strict=True):
            out.extend(_item_runs(future.result(), len(batch), len(hash_seeds)))
        return out

    def run_once(self, items: Sequence[ExecItem]) -> list[ItemRun]:
        return [runs[0] for runs in self.runs(items, (1,))]

    def job(self, batch: Sequence[ExecItem], hash_seeds: Sequence[int]) -> Job:
        """The sandbox job that runs `batch` once per hash seed."""
        options = self.options
        data = {
            "hash_seeds": list(hash_seeds),
            "items": [item.model_dump() for item in batch],
            **options.model_dump(exclude={"items_per_job"}),
        }
        # Every (seed, item) run is one unit of the item budget; each seed also pays its children's start.
        limits = outer_limits(per_unit_s=options.item_timeout_s, units=len(hash_seeds) * len(batch),
                              start_s=10.0 + 5.0 * len(hash_seeds), memory_mb=options.memory_mb + _JOB_EXTRA_MB,
                              output_bytes=_OUTPUT_BYTES)
        return Job(program=_source("_exec_driver.py"), data=data, files={_CHILD: _source(_CHILD)}, limits=limits)


def _item_runs(result: JobResult, items: int, seeds: int) -> list[list[ItemRun]]:
    """Per item, its runs in seed order; ExecutorError when the job did not report every run properly."""
    if not result.ok:
        raise ExecutorError(_failure(result, result.problem))
    shape = [len(runs) if isinstance(runs, list) else None for runs in result.records]
    if shape != [items] * seeds:
        raise ExecutorError(_failure(result, f"the batch executor reported runs per seed {shape}, not {[items] * seeds}"))
    try:
        per_seed = [[_item_run(raw) for raw in runs] for runs in result.records]
    except (KeyError, TypeError, ValidationError) as exc:
        raise ExecutorError(_failure(result, f"the batch executor reported a malformed run: {exc}")) from exc
    return [list(runs) for runs in zip(*per_seed, strict=True)]


def _failure(result: JobResult, problem: str) -> str:
    execution = result.execution
    tail = execution.stderr.strip()[-1500:]
    return (f"the batch executor's job failed (status {execution.status.value}, exit code {execution.exit_code}): "
            f"{problem}" + (f"\n--- stderr tail ---\n{tail}" if tail and tail not in problem else ""))


def _item_run(raw: dict) -> ItemRun:
    return ItemRun(load=CallResult(**raw["load"]), calls=[CallResult(**call) for call in raw["calls"]])


@cache
def _source(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")
