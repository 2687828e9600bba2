"""The files of a `semcoder eval BENCH --model URL --out DIR` folder, as data: the one schema both the writer
(evals/model_run.py) and the reader (`semcoder serve --reports`, agent/api/reports.py) import.

It lives in agent/ because agent/ may not import evals/ (tests/test_layering.py); evals/ imports it from here.

    DIR/report.json       RunReport: pass@1 (and pass@k where n allows) per round
    DIR/tasks.jsonl       one TaskOutcome per line: each task's samples per round (program, verdict, failing test)
    DIR/report.md, DIR/pass_at_1.png, DIR/generations.jsonl, DIR/round_K.json   (the writer's own files)
"""

from __future__ import annotations

from pydantic import BaseModel, Field

REPORT_FILE = "report.json"
TASKS_FILE = "tasks.jsonl"


class RoundScore(BaseModel):
    round: int = Field(description="0: the generated solutions; k: after k refinement rounds.")
    pass_at_1: float = Field(description="Fraction of samples passing, averaged over tasks.")
    pass_at_k: dict[int, float] = Field(default_factory=dict, description="pass@k (the unbiased estimator, averaged "
                                        "over tasks) for each k in 1, 5, 10, 20, 50, 100 that every task has the "
                                        "samples for, and for k = n (the fewest samples any task has): the share "
                                        "of tasks some sample solves. {} in reports written before it existed.")
    solved_tasks: int = Field(description="Tasks with every sample passing.")
    refined_samples: int = Field(description="Samples sent to the model for refinement in this round.")


class RunReport(BaseModel):
    benchmark: str
    model: str
    n_tasks: int
    n_samples_per_task: int
    feedback: str
    dialect: str = Field("semcoder", description="How the model was prompted: semcoder (raw prompts) or chat.")
    rounds: list[RoundScore]


def reported_ks(report: RunReport) -> list[int]:
    """The k > 1 whose pass@k every round of `report` has (what a table or chart can show beside pass@1)."""
    ks = [set(r.pass_at_k) for r in report.rounds]
    return sorted(k for k in set.intersection(*ks) if k > 1) if ks else []


class FailingInput(BaseModel):
    """The benchmark assert a program failed first, as SemCoder's refine prompt shows it."""

    call: str = Field(description="`retv = <call>`")
    expected: str = Field(description="`assert retv == <expected>`")


class SampleOutcome(BaseModel):
    program: str = Field(description="The program scored (round 0: the sanitized generation; k: after k "
                         "refinements).")
    passed: bool
    detail: str = Field("", description="Why it failed: the scorer's first failing check.")
    failing_input: FailingInput | None = Field(None, description="The first benchmark assert this program fails, "
                                               "shown to the model by the next round's refinement (None for a "
                                               "passing sample, the last round, or a task without such asserts).")


class TaskRound(BaseModel):
    round: int
    samples: list[SampleOutcome]


class TaskOutcome(BaseModel):
    """One line of tasks.jsonl."""

    task_id: str
    rounds: list[TaskRound]
