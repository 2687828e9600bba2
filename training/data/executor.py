"""Batch execution of many (program, inputs) items in the sandbox, several items per sandbox job.

One sandbox job runs a whole batch: `_exec_driver.py` starts `_exec_child.py` once per hash seed and
the child runs every item's entry function on all its inputs, so a program costs a few milliseconds
instead of a process start per input. Jobs go to a `sandbox.Pool`, one per core.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox import ExecRequest, Limits, Pool, SandboxError

CallStatus = Literal[
    "ok", "error", "timeout", "side_effect", "unrepresentable", "too_large", "bad_input", "crashed", "skipped"
]
_HERE = Path(__file__).parent


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

    def __init__(self, pool: Pool, options: ExecOptions | None = None) -> None:
        self.pool = pool
        self.options = options or ExecOptions()

    def runs(self, items: Sequence[ExecItem], hash_seeds: Sequence[int] = (1,)) -> list[list[ItemRun]]:
        size = self.options.items_per_job
        batches = [list(items[i : i + size]) for i in range(0, len(items), size)]
        requests = [self._request(batch, hash_seeds) for batch in batches]
        futures = [self.pool.submit(request) for request in requests]
        out: list[list[ItemRun]] = []
        for future, request in zip(futures, requests, strict=True):
            out.extend(_parse(future.result(), request, len(hash_seeds)))
        return out

    def run_once(self, items: Sequence[ExecItem]) -> list[ItemRun]:
        return [runs[0] for runs in self.runs(items, (1,))]

    def _request(self, batch: list[ExecItem], hash_seeds: Sequence[int]) -> ExecRequest:
        options = self.options
        nonce = secrets.token_hex(8)
        spec = {
            "nonce": nonce,
            "hash_seeds": list(hash_seeds),
            "items": [item.model_dump() for item in batch],
            **options.model_dump(exclude={"items_per_job"}),
        }
        seconds = len(hash_seeds) * (len(batch) * (options.item_timeout_s + 0.5) + 5.0) + 10.0
        limits = Limits(wall_time_s=seconds, cpu_time_s=seconds, memory_mb=options.memory_mb + 512,
                        output_bytes=64_000_000)
        files = {"exec_spec.json": json.dumps(spec), "_exec_child.py": _source("_exec_child.py")}
        return ExecRequest(code=_source("_exec_driver.py"), files=files, limits=limits)


def _parse(result, request: ExecRequest, seeds: int) -> list[list[ItemRun]]:
    nonce = json.loads(request.files["exec_spec.json"])["nonce"]  # type: ignore[arg-type]
    prefix = f"@@pyx-exec-result {nonce} "
    for line in result.stdout.splitlines():
        if line.startswith(prefix):
            runs = json.loads(line[len(prefix) :])
            per_seed = [[_item_run(raw) for raw in run] for run in runs]
            return [list(pair) for pair in zip(*per_seed, strict=True)]
    raise ExecutorError(
        f"the batch executor reported nothing (status {result.status.value}, exit code {result.exit_code}): "
        f"{result.stderr[-1500:]}"
    )


def _item_run(raw: dict) -> ItemRun:
    return ItemRun(load=CallResult(**raw["load"]), calls=[CallResult(**call) for call in raw["calls"]])


@cache
def _source(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")
