"""HumanEval+ / MBPP+ scoring: EvalPlus 0.3.1's differential testing, run in the sandbox pool.

One job per sample runs all of its inputs (base, then plus) with a per-input time limit of
max(min_time_limit, factor x canonical time), all inputs together capped at `task_time_cap_s`.
Unlike EvalPlus, the per-input limit (and the canonical time) is CPU time, with a wall-time
backstop of 3x the limit, so that verdicts do not depend on how loaded the machine is.
The harness reports each output by digest, with the value only where a digest cannot settle it
(tolerances, special oracles, a mismatch); it stops at the first error, timeout, unserializable
output or digest mismatch. The host decides: equal digests pass; otherwise it judges the value
(EvalPlus's `==`, atol and special oracles). A sample passes only if every input passes (base +
plus). If an output with a different encoding turns out equal (1 vs 1.0), the sample is rerun
without stopping at mismatches.
"""

from __future__ import annotations

from typing import Any

from evals import _harness
from evals._compare import judge_output, special_oracle
from evals._config import EvalConfig
from evals._groundtruth import Expected, expected_outputs, output_not_none
from evals._jobs import failure, harness_job, run_all
from evals._progress import Progress
from evals._report import Verdict
from evals._samples import Sample
from evals.loaders import DiffTask
from sandbox import Job, JobResult, JobRunner
from sandbox.job import outer_limits

STARTUP_SLACK_S = 2.0


class _TaskContext:
    """What every sample of one task shares: inputs, expected outputs, limits and early-stop digests."""

    def __init__(self, dataset: str, task: DiffTask, expected: Expected, config: EvalConfig):
        self.dataset, self.task, self.inputs, self.expected = dataset, task, task.inputs, expected
        self.time_limits = [max(config.min_time_limit_s, config.gt_time_limit_factor * t) for t in expected.times]
        self.canonical_s = sum(expected.times)
        # EvalPlus caps a sample at 60 s, which fails even the canonical solution of a slow task
        # (Mbpp/599 takes ~30 s alone, more on a loaded machine); never cap below factor x canonical.
        capped = min(config.task_time_cap_s, sum(self.time_limits))
        self.budget = max(capped, config.gt_time_limit_factor * self.canonical_s) + STARTUP_SLACK_S
        self.memory_mb = config.memory_mb
        self._values: dict[int, Any] = {}
        self.exact = [self._compared_exactly(i) for i in range(len(self.inputs))]

    def _compared_exactly(self, index: int) -> bool:
        """Whether equal encodings are the only way to pass (no tolerance, no special oracle)."""
        if special_oracle(self.dataset, self.task.entry_point) is not None:
            return False
        return self.task.atol == 0 and not self.expected.floats[index]

    def expected_value(self, index: int) -> Any:
        if index not in self._values:
            self._values[index] = _harness.decode(self.expected.values[index])
        return self._values[index]

    def job(self, program: str, stop_on_mismatch: bool) -> Job:
        stop_digests = [d if exact else None for d, exact in zip(self.expected.stop_digests, self.exact, strict=True)]
        spec = {
            "mode": "diff", "solution": program, "entry_point": self.task.entry_point, "inputs": self.inputs,
            "time_limits": self.time_limits, "load_time_limit": self.budget, "send": "unsure",
            "stop_digests": stop_digests, "stop_on_mismatch": stop_on_mismatch,
            "output_not_none": output_not_none(self.dataset, self.task),
        }
        return harness_job(spec, outer_limits(per_unit_s=self.budget, start_s=STARTUP_SLACK_S,
                                              memory_mb=self.memory_mb, output_bytes=256 * 2**20))


class _Outcome:
    """The host's reading of one job: a verdict, or a request to rerun without early stopping."""

    def __init__(self, verdict: Verdict | None, rerun: bool = False) -> None:
        self.verdict, self.rerun = verdict, rerun


def judge_job(ctx: _TaskContext, task_id: str, result: JobResult, stopping: bool) -> _Outcome:
    """Inputs are judged in order from the records the job sent, also those of a job that died part-way
    (they say which input failed); a pass needs every input judged right and the job properly ended."""
    records = [r for r in result.records if isinstance(r, dict)]
    load = next((r for r in records if "load" in r), None)
    if load is None or load["load"] != "ok":
        reason = load or {"s": failure(result)}
        return _Outcome(Verdict(task_id=task_id, passed=False, detail=f"load: {reason['s']} {reason.get('m', '')}"))
    outputs = {r["i"]: r for r in records if "i" in r}
    for index in range(len(ctx.inputs)):
        wrong = _judge_input(ctx, index, outputs.get(index), result)
        if wrong is not None:
            return _Outcome(Verdict(task_id=task_id, passed=False, detail=f"input {index}: {wrong}"))
        stopped_here = index + 1 < len(ctx.inputs) and index + 1 not in outputs
        if stopped_here and stopping and result.ok:
            return _Outcome(None, rerun=True)  # the harness saw a different encoding of an equal value
    if not result.ok:  # every output was right, but the job did not end as the harness ends it
        return _Outcome(Verdict(task_id=task_id, passed=False, detail=failure(result)))
    return _Outcome(Verdict(task_id=task_id, passed=True))


def _judge_input(ctx: _TaskContext, index: int, record: dict | None, result: JobResult) -> str | None:
    if record is None:
        if result.ok:
            return "no result (the harness stopped before this input)"
        return f"no result (crashed, killed, or the task's time budget ran out: {result.problem[:300]})"
    if record["s"] != "ok":
        return f"{record['s']} {record.get('m', '')}".strip()
    if "v" in record and _harness.digest(record["v"]) != record["h"]:
        return "inconsistent result record"
    if record["h"] == ctx.expected.digests[index]:
        return None  # identical encodings: equal plain values
    if "v" not in record or ctx.expected.values[index] is None:
        return "wrong output"
    out = _harness.decode(record["v"])
    args = ctx.task.inputs[index]
    if judge_output(ctx.dataset, ctx.task.entry_point, list(args), out, ctx.expected_value(index), ctx.task.atol):
        return None
    return f"wrong output {record['v'][:120]}"


def score_diff(
    dataset: str, tasks: list[DiffTask], samples: list[Sample], runner: JobRunner, config: EvalConfig,
    show_progress: bool = True,
) -> list[Verdict]:
    """Verdicts in sample order. dataset is 'humaneval' or 'mbpp' (selects EvalPlus's special oracles)."""
    wanted = {s.task_id for s in samples}
    used = [t for t in tasks if t.task_id in wanted]
    expected = expected_outputs(dataset, used, runner, config, show_progress)
    contexts = {t.task_id: _TaskContext(dataset, t, expected[t.task_id], config) for t in used}
    jobs = [contexts[s.task_id].job(s.text, stop_on_mismatch=True) for s in samples]
    progress = Progress(f"scoring {len(samples)} samples", len(samples), enabled=show_progress)
    results = run_all(runner, jobs, progress, cost=[contexts[s.task_id].canonical_s for s in samples])
    outcomes = [judge_job(contexts[s.task_id], s.task_id, r, True) for s, r in zip(samples, results, strict=True)]
    return _resolve_reruns(samples, contexts, outcomes, runner, show_progress)


def _resolve_reruns(samples, contexts, outcomes, runner, show_progress) -> list[Verdict]:
    rerun = [i for i, outcome in enumerate(outcomes) if outcome.rerun]
    if rerun:
        jobs = [contexts[samples[i].task_id].job(samples[i].text, stop_on_mismatch=False) for i in rerun]
        progress = Progress("rerunning without early stop", len(jobs), enabled=show_progress)
        for i, result in zip(rerun, run_all(runner, jobs, progress), strict=True):
            outcomes[i] = judge_job(contexts[samples[i].task_id], samples[i].task_id, result, False)
    return [outcome.verdict for outcome in outcomes]  # type: ignore[misc]
