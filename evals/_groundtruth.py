"""Expected outputs of HumanEval+/MBPP+: the canonical solution run in the sandbox, cached on disk.

The cache key covers the harness source and every task's canonical program and inputs, so an edit
to either recomputes; files are written to a temp name and renamed, so a crash leaves no half file.
Files are plain JSON (20 MB for HumanEval+): decompressing them took a third of reading them, on every
run. A file for another harness can never be read again, and goes when a file for this one is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from evals._compare import MBPP_OUTPUT_NOT_NONE, special_oracle
from evals._config import EvalConfig
from evals._harness import output_records
from evals._jobs import HARNESS_SOURCE, diff_limits, harness_job, run_all
from evals._progress import Progress
from evals.loaders import DatasetError, DiffTask
from sandbox import Job, JobResult, JobRunner


class Expected(BaseModel):
    """The canonical outputs of one task, in input order: digests always, encoded values where kept."""

    digests: list[str] = Field(description="Unkeyed digests of the encoded outputs: a sample's must match.")
    stop_digests: list[str] = Field(description="Keyed digests the harness uses to stop at a first mismatch.")
    values: list[str | None] = Field(description="Encoded outputs; None for large ones compared by digest only.")
    times: list[float] = Field(description="CPU seconds the canonical solution took per input, measured in the "
                               "sandbox: per-input limits derive from them.")
    encode_times: list[float] = Field(description="CPU seconds the harness took to fingerprint (and, where kept, "
                                      "encode) each output: a sample's job budget allows for them.")
    floats: list[bool] = Field(description="Whether each output is a float or a list of floats (gets a tolerance).")


def _stable_text(value: object) -> object:
    if isinstance(value, set | frozenset):
        return sorted(map(repr, value))
    return repr(value)


_HARNESS_ID = hashlib.sha256(HARNESS_SOURCE.encode()).hexdigest()[:12]


def _cache_path(cache_dir: Path, dataset: str, tasks: list[DiffTask]) -> Path:
    digest = hashlib.sha256(HARNESS_SOURCE.encode())
    digest.update(dataset.encode())
    for task in tasks:
        record = [task.task_id, task.program(task.canonical_solution), task.atol, task.inputs]
        digest.update(json.dumps(record, default=_stable_text).encode())
    return cache_dir / f"expected-{dataset}-{_HARNESS_ID}-{digest.hexdigest()[:24]}.json"


def _groundtruth_job(dataset: str, task: DiffTask, config: EvalConfig) -> Job:
    inputs = task.inputs
    limit = config.groundtruth_input_limit_s
    spec = {
        "mode": "diff", "solution": task.program(task.canonical_solution), "entry_point": task.entry_point,
        "inputs": inputs, "time_limits": [limit] * len(inputs), "load_time_limit": limit,
        "output_not_none": output_not_none(dataset, task), "report_stop_digests": True,
        "send": "all" if needs_all_values(dataset, task) else "small",
    }
    cpu = min(limit * max(len(inputs), 1), 900.0)
    return harness_job(spec, diff_limits(cpu, config.memory_mb, output_bytes=512 * 2**20))


def needs_all_values(dataset: str, task: DiffTask) -> bool:
    """Tolerances and special oracles compare values, so those tasks keep every expected value."""
    return task.atol != 0 or special_oracle(dataset, task.entry_point) is not None


def output_not_none(dataset: str, task: DiffTask) -> bool:
    return dataset == "mbpp" and task.entry_point in MBPP_OUTPUT_NOT_NONE


def _expected_from(task: DiffTask, result: JobResult) -> Expected:
    by_index = output_records(result.records, len(task.inputs))
    outputs = [by_index[i] for i in sorted(by_index)]
    failed = next((r for r in outputs if r["s"] != "ok"), None)
    if failed is not None or len(outputs) != len(task.inputs) or not result.ok:
        detail = failed or {"job": result.problem[-300:] or "ended early", "run": result.execution.status.value}
        raise DatasetError(
            f"{task.task_id}: the canonical solution did not produce all {len(task.inputs)} outputs "
            f"(got {len(outputs)}; {detail}); cannot compute expected outputs"
        )
    return Expected(digests=[r["h"] for r in outputs], stop_digests=[r["k"] for r in outputs],
                    values=[r.get("v") for r in outputs], times=[r["t"] for r in outputs],
                    encode_times=[r["e"] for r in outputs], floats=[r["f"] for r in outputs])


def _read_cache(path: Path) -> dict[str, Expected] | None:
    try:
        raw = json.loads(path.read_bytes())
        return {task_id: Expected(**value) for task_id, value in raw.items()}
    except (OSError, ValueError, TypeError, AttributeError):  # missing, or not what this module writes
        return None


def _write_cache(path: Path, dataset: str, expected: dict[str, Expected]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({k: v.model_dump() for k, v in expected.items()}, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for old in path.parent.glob(f"expected-{dataset}-*"):  # another harness's (or the gzipped files of before)
        if not old.name.startswith(f"expected-{dataset}-{_HARNESS_ID}-") and not old.name.endswith(".tmp"):
            old.unlink(missing_ok=True)


def expected_outputs(
    dataset: str, tasks: list[DiffTask], runner: JobRunner, config: EvalConfig,
    show_progress: bool = True,
) -> dict[str, Expected]:
    """Expected outputs per task_id (dataset: 'humaneval' or 'mbpp', for EvalPlus's special cases)."""
    path = _cache_path(config.cache_dir, dataset, tasks)
    cached = _read_cache(path)
    if cached is not None and all(t.task_id in cached for t in tasks):
        return cached
    jobs = [_groundtruth_job(dataset, task, config) for task in tasks]
    progress = Progress(f"expected outputs ({dataset})", len(jobs), enabled=show_progress)
    results = run_all(runner, jobs, progress)
    expected = {task.task_id: _expected_from(task, result) for task, result in zip(tasks, results, strict=True)}
    _write_cache(path, dataset, expected)
    return expected
