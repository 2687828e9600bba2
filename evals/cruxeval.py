"""CRUXEval scoring, reproducing the official harness (facebookresearch/cruxeval, `evaluation/`).

The official check of a generation g for sample (code, input, output) is
`exec(code + "\\nassert " + output + " == " + g)` with a 3 s limit, after two filters: for
CRUXEval-I a generation without "f(" fails, for CRUXEval-O a generation containing "f(<input>)"
fails. Here the same check runs in the sandbox, with two deliberate differences:

- n handling: a filtered generation counts as a failed sample (n stays the number of generations).
  An older revision of the official `evaluate_score` dropped filtered generations from n (and put
  them back, as failures, only when no generation passed), which inflates pass@k;
  `legacy_official_counts` reproduces that for comparison. The shipped CodeLlama-7B reference
  generations contain no filtered generation, so both give the official 35.95 / 34.21.
- `output` and `g` are evaluated as two separate expressions whose values must be plain values, so
  `f(...)` returning an object with an always-true `__eq__`, or a generation such as `f(x) or True`
  (which the official string concatenation parses as `(output == f(x)) or True`), cannot pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from evals._config import EvalConfig
from evals._jobs import harness_job, run_all, single_status
from evals._progress import Progress
from evals._report import Verdict
from evals._samples import Sample
from evals.loaders import CruxTask
from sandbox import Job, JobResult, JobRunner
from sandbox.job import outer_limits

STARTUP_SLACK_S = 2.0


def is_filtered(mode: str, task: CruxTask, generation: str) -> bool:
    """The official filters: these generations fail without running."""
    if mode == "input":
        return "f(" not in generation
    return f"f({task.input})" in generation


def crux_job(mode: str, task: CruxTask, generation: str, config: EvalConfig) -> Job:
    spec = {"mode": "crux", "code": task.code, "output": task.output, "generation": generation,
            "time_limit": config.crux_time_limit_s}
    return harness_job(spec, outer_limits(per_unit_s=config.crux_time_limit_s, start_s=STARTUP_SLACK_S,
                                          memory_mb=config.memory_mb))


def _judge(task_id: str, result: JobResult) -> Verdict:
    status, _ = single_status(result)
    return Verdict(task_id=task_id, passed=status == "passed", detail="" if status == "passed" else status)


def score_cruxeval(
    mode: str, tasks: list[CruxTask], samples: list[Sample], runner: JobRunner, config: EvalConfig,
    show_progress: bool = True,
) -> list[Verdict]:
    """Verdicts in sample order; mode is 'input' (CRUXEval-I) or 'output' (CRUXEval-O)."""
    if mode not in ("input", "output"):
        raise ValueError(f"mode must be 'input' or 'output', not {mode!r}")
    by_id = {task.task_id: task for task in tasks}
    verdicts: list[Verdict | None] = [None] * len(samples)
    to_run: list[int] = []
    for index, sample in enumerate(samples):
        if is_filtered(mode, by_id[sample.task_id], sample.text):
            verdicts[index] = Verdict(task_id=sample.task_id, passed=False, detail="filtered")
        else:
            to_run.append(index)
    jobs = [crux_job(mode, by_id[samples[i].task_id], samples[i].text, config) for i in to_run]
    progress = Progress(f"scoring {len(jobs)} generations", len(jobs), enabled=show_progress)
    for index, result in zip(to_run, run_all(runner, jobs, progress), strict=True):
        verdicts[index] = _judge(samples[index].task_id, result)
    return verdicts  # type: ignore[return-value]


def legacy_official_counts(verdicts: Sequence[Verdict]) -> dict[str, tuple[int, int]]:
    """(n, passed) per task as the older official scorer counted them: filtered generations leave n,
    unless no generation of the task passed, in which case n is the number of generations."""
    counts: dict[str, tuple[int, int, int]] = {}
    for verdict in verdicts:
        total, kept, passed = counts.get(verdict.task_id, (0, 0, 0))
        counts[verdict.task_id] = (total + 1, kept + (verdict.detail != "filtered"), passed + verdict.passed)
    return {task_id: ((kept if passed else total), passed) for task_id, (total, kept, passed) in counts.items()}
