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
from evals._jobs import diff_limits, failure, harness_job, run_all
from evals._progress import Progress
from evals._report import Verdict
from evals._samples import Sample
from evals.loaders import DiffTask
from sandbox import Job, JobResult, JobRunner, Status

STARTUP_SLACK_S = 2.0


class _TaskContext:
    """What every sample of one task shares: inputs, expected outputs, limits and early-stop digests."""

    def __init__(self, dataset: str, task: DiffTask, expected: Expected, config: EvalConfig):
        self.dataset, self.task, self.inputs, self.expected = dataset, task, task.inputs, expected
        # EvalPlus's per-input limits, on the canonical solution's CPU time (measured in the sandbox).
        self.time_limits = [max(config.min_time_limit_s, config.gt_time_limit_factor * t) for t in expected.times]
        self.canonical_s = sum(expected.times)
        # EvalPlus caps a sample at 60 s, which fails even the canonical solution of a slow task
        # (Mbpp/599 takes ~30 s alone, more on a loaded machine); never cap below factor x canonical.
        # The harness's own work on the outputs (Mbpp/255's are 100 MB of text) comes on top.
        capped = min(config.task_time_cap_s, sum(self.time_limits))
        self.budget = max(capped, config.gt_time_limit_factor * self.canonical_s) \
            + config.gt_time_limit_factor * sum(expected.encode_times) + STARTUP_SLACK_S
        self.memory_mb = config.memory_mb
        self._values: dict[int, Any] = {}
        oracle = special_oracle(self.dataset, self.task.entry_point) is not None
        # Where a tolerance or a special oracle applies, a differing output is judged by value and the run goes
        # on; elsewhere equal encodings are the only way to pass, and the first mismatch may stop the run.
        self.tolerant = [oracle or self.task.atol != 0 or floats for floats in expected.floats]
        self.kept = [value is not None for value in expected.values]
        self._runs: dict[tuple[int, int, str], bool] = {}

    def run_matches(self, run: list) -> bool:
        """Whether a run of matched outputs (first, last, run digest) is what the expected outputs give: the
        check that makes a run worth its inputs' digests."""
        key = (run[0], run[1], run[2])
        if key not in self._runs:
            self._runs[key] = _harness.run_digest(self.expected.digests[run[0]:run[1] + 1]) == run[2]
        return self._runs[key]

    def expected_value(self, index: int) -> Any:
        if index not in self._values:
            self._values[index] = _harness.decode(self.expected.values[index])
        return self._values[index]

    def job(self, program: str, stop_on_mismatch: bool) -> Job:
        spec = {
            "mode": "diff", "solution": program, "entry_point": self.task.entry_point, "inputs": self.inputs,
            "time_limits": self.time_limits, "load_time_limit": self.budget, "send": "unsure",
            "stop_digests": self.expected.stop_digests, "tolerant": self.tolerant, "values": self.kept,
            "stop_on_mismatch": stop_on_mismatch, "output_not_none": output_not_none(self.dataset, self.task),
        }
        return harness_job(spec, diff_limits(self.budget, self.memory_mb, output_bytes=256 * 2**20))


class _Outcome:
    """The host's reading of one job: a verdict, or a request to rerun (without early stopping, or once more
    because the sample failed only for time)."""

    def __init__(self, verdict: Verdict | None, rerun: bool = False, for_time: bool = False) -> None:
        self.verdict, self.rerun, self.for_time = verdict, rerun, for_time


def judge_job(ctx: _TaskContext, task_id: str, result: JobResult, stopping: bool) -> _Outcome:
    """Inputs are judged in order from the records the job sent, also those of a job that died part-way
    (they say which input failed); a pass needs every input judged right and the job properly ended.
    `for_time` marks a failure for time alone: every output before it was right."""
    records = [r for r in result.records if isinstance(r, dict)]
    load = next((r for r in records if "load" in r), None)
    if load is None or load["load"] != "ok":
        reason = load or {"s": failure(result)}
        return _Outcome(Verdict(task_id=task_id, passed=False, detail=f"load: {reason['s']} {reason.get('m', '')}"),
                        for_time=reason.get("s") == "timeout" or _job_timed_out(result))
    count = len(ctx.inputs)
    outputs = _harness.output_records(records, count)
    index = 0
    while index < count:
        record = outputs.get(index)
        wrong = _judge_input(ctx, index, record, result)
        if wrong is not None:
            timed_out = (record is not None and record["s"] == "timeout") or (record is None and _job_timed_out(result))
            return _Outcome(Verdict(task_id=task_id, passed=False, detail=f"input {index}: {wrong}"), for_time=timed_out)
        if "r" in record:  # a run's inputs are judged together, by its digest: the next to judge follows it
            index = record["r"][1]
        stopped_here = index + 1 < count and index + 1 not in outputs
        if stopped_here and stopping and result.ok:
            return _Outcome(None, rerun=True)  # the harness saw a different encoding of an equal value
        index += 1
    if not result.ok:  # every output was right, but the job did not end as the harness ends it
        return _Outcome(Verdict(task_id=task_id, passed=False, detail=failure(result)),
                        for_time=_job_timed_out(result))
    return _Outcome(Verdict(task_id=task_id, passed=True))


def _job_timed_out(result: JobResult) -> bool:
    return not result.ok and not result.interfered and result.execution.status is Status.timeout


def _judge_input(ctx: _TaskContext, index: int, record: dict | None, result: JobResult) -> str | None:
    if record is None:
        if result.ok:
            return "no result (the harness stopped before this input)"
        return f"no result (crashed, killed, or the task's time budget ran out: {result.problem[:300]})"
    if record["s"] != "ok":
        return f"{record['s']} {record.get('m', '')}".strip()
    if "r" in record:
        return None if ctx.run_matches(record["r"]) else "inconsistent result record (a run of outputs)"
    if record["h"] == ctx.expected.digests[index]:
        return None  # identical encodings: equal plain values
    if "v" not in record or not ctx.kept[index]:
        return "wrong output"
    out = _harness.decode(record["v"])
    if _harness.digest(_harness.fingerprint(out)) != record["h"]:
        return "inconsistent result record"
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
    _resolve_reruns(samples, contexts, outcomes, runner, show_progress)
    _retry_timeouts(samples, contexts, outcomes, runner, show_progress)
    return [outcome.verdict for outcome in outcomes]  # type: ignore[misc]


def _resolve_reruns(samples, contexts, outcomes, runner, show_progress) -> None:
    rerun = [i for i, outcome in enumerate(outcomes) if outcome.rerun]
    if rerun:
        jobs = [contexts[samples[i].task_id].job(samples[i].text, stop_on_mismatch=False) for i in rerun]
        progress = Progress("rerunning without early stop", len(jobs), enabled=show_progress)
        for i, result in zip(rerun, run_all(runner, jobs, progress), strict=True):
            outcomes[i] = judge_job(contexts[samples[i].task_id], samples[i].task_id, result, False)


def _retry_timeouts(samples, contexts, outcomes, runner, show_progress) -> None:
    """A sample that failed only for time runs once more before the failure stands, after every other job
    (so that its worker is idle), ahead of anything else queued on the runner (`urgent`). Limits are on CPU
    time, so load alone rarely makes a sample fail; this catches what remains (a machine so busy that a
    job's wall-time backstop ran out). A genuinely slow or stuck sample fails both times. The verdict records
    the retry (`retried`)."""
    again = [i for i, outcome in enumerate(outcomes) if outcome.for_time]
    if not again:
        return
    progress = Progress(f"retrying {len(again)} samples that ran out of time", len(again), enabled=show_progress)
    jobs = [contexts[samples[i].task_id].job(samples[i].text, stop_on_mismatch=False) for i in again]
    for i, result in zip(again, run_all(runner, jobs, progress, urgent=True), strict=True):
        verdict = judge_job(contexts[samples[i].task_id], samples[i].task_id, result, False).verdict
        assert verdict is not None  # without early stopping there is nothing to rerun
        outcomes[i] = _Outcome(verdict.model_copy(update={"retried": True}))
