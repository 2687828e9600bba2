"""Per-sample verdicts and the report `semcoder eval` prints."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from evals.passk import mean_pass_at_k


class Verdict(BaseModel):
    """Whether one sample passed, and why not (for humans; the first failing check)."""

    task_id: str
    passed: bool
    detail: str = ""
    retried: bool = Field(False, description="It failed only for time and was run once more (the verdict is "
                          "the second run's).")


class TaskScore(BaseModel):
    passed: int
    n: int


class Report(BaseModel):
    """The one JSON object of `semcoder eval --json`; pass@k are fractions in [0, 1]."""

    model_config = ConfigDict(populate_by_name=True)

    benchmark: str
    n_tasks: int
    pass_at_1: float = Field(alias="pass@1")
    pass_at_5: float | None = Field(alias="pass@5", description="None when some task has fewer than 5 samples.")
    per_task: dict[str, TaskScore]


def build_report(benchmark: str, task_ids: Iterable[str], verdicts: Iterable[Verdict]) -> Report:
    """Tally verdicts per task (tasks without samples are not scored) and average pass@k over tasks."""
    per_task = {task_id: TaskScore(passed=0, n=0) for task_id in task_ids}
    for verdict in verdicts:
        score = per_task[verdict.task_id]
        score.n += 1
        score.passed += verdict.passed
    per_task = {task_id: score for task_id, score in per_task.items() if score.n}
    counts = [(score.n, score.passed) for score in per_task.values()]
    return Report(
        benchmark=benchmark, n_tasks=len(per_task), pass_at_1=mean_pass_at_k(counts, 1) or 0.0,
        pass_at_5=mean_pass_at_k(counts, 5), per_task=per_task,
    )
