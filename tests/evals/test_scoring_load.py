"""HumanEval+ / MBPP+ verdicts do not move with the machine's load (issue #20 part 3).

Per-input limits are on the canonical solution's CPU time, the backstop for blocking calls leaves out the time a
call waited for a CPU, and a sample that failed only for time runs once more before the failure stands. These
tests compare verdicts, never times: a CPU hog beside the scorer must not change a single one, a retry is
recorded, and a genuinely slow, stuck or sleeping sample still fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

import pytest

from evals._config import EvalConfig
from evals._samples import Sample
from evals.loaders import load_humanevalplus, load_mbppplus
from evals.scoring import verdicts_for

MBPPPLUS = {t.task_id: t for t in load_mbppplus()}
GCD = next(t for t in load_humanevalplus() if t.task_id == "HumanEval/13")
RIGHT_GCD = "    import math\n    return math.gcd(a, b)\n"
SPIN = "    while True:\n        pass\n"


@contextmanager
def cpu_hogs(count: int):
    """`count` busy processes beside the scorer (what a test suite or a compile on the same machine does)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


class FirstRunSpins:
    """The real pool, except that a sample's first (not urgent) run is replaced by one that never returns: the
    sample fails for time, and only its retry (urgent) runs it as written."""

    def __init__(self, pool) -> None:
        self.pool, self.urgent = pool, 0

    def submit_job(self, job, *, urgent=False):
        if urgent:
            self.urgent += 1
        elif job.data.get("stop_digests"):  # a sample's job (expected outputs run as written)
            spinning = dict(job.data, solution=job.data["solution"].replace(RIGHT_GCD, SPIN))
            job = job.model_copy(update={"data": spinning})
        return self.pool.submit_job(job, urgent=urgent)


def _gcd_sample(body: str) -> Sample:
    return Sample(task_id=GCD.task_id, text=GCD.prompt + body)


def test_a_sample_that_failed_only_for_time_is_rerun_once_and_the_verdict_says_so(runner, cache_dir) -> None:
    spinning = FirstRunSpins(runner)
    (verdict,) = verdicts_for("humaneval+", [GCD], [_gcd_sample(RIGHT_GCD)], spinning, EvalConfig(cache_dir=cache_dir),
                              show_progress=False)
    assert verdict.passed and verdict.retried, verdict
    assert spinning.urgent == 1


def test_slow_stuck_and_sleeping_samples_still_fail_after_their_retry(runner, cache_dir) -> None:
    slow = "    import time\n    end = time.process_time() + 1.5\n    while time.process_time() < end:\n" \
           "        pass\n" + RIGHT_GCD
    sleeping = "    import time\n    time.sleep(3.5)\n" + RIGHT_GCD
    wrong = "    return 1\n"
    verdicts = verdicts_for("humaneval+", [GCD], [_gcd_sample(code) for code in (slow, SPIN, sleeping, wrong)],
                            runner, EvalConfig(cache_dir=cache_dir), show_progress=False)
    assert [v.passed for v in verdicts] == [False] * 4, verdicts
    assert [v.retried for v in verdicts] == [True, True, True, False], verdicts  # a wrong output is final
    assert all("time" in v.detail for v in verdicts[:3]), verdicts


# Mbpp/255's outputs reach 100 MB of text (it ran out of time at load 3-6 before); the others are MBPP+'s slower
# tasks. Each also gets a wrong sample and a too-slow one, so that failing verdicts are compared too.
LOAD_SLICE = ["Mbpp/255", "Mbpp/392", "Mbpp/603", "Mbpp/3"]


def _load_samples() -> list[Sample]:
    samples = []
    for task_id in LOAD_SLICE:
        task = MBPPPLUS[task_id]
        canonical = task.program(task.canonical_solution)
        samples.append(Sample(task_id=task_id, text=canonical))
        wrong = canonical + f"\ndef {task.entry_point}(*args):\n    return 'wrong'\n"
        samples.append(Sample(task_id=task_id, text=wrong))
        slow = canonical + f"\ndef {task.entry_point}(*args):\n    while True:\n        pass\n"
        samples.append(Sample(task_id=task_id, text=slow))
    return samples


@pytest.mark.slow
def test_mbppplus_verdicts_are_the_same_beside_a_cpu_hog(runner, cache_dir) -> None:
    tasks = [MBPPPLUS[task_id] for task_id in LOAD_SLICE]
    samples = _load_samples()
    config = EvalConfig(cache_dir=cache_dir)
    quiet = verdicts_for("mbpp+", tasks, samples, runner, config, show_progress=False)
    # Twice as many busy loops as CPUs: each of the scorer's workers gets a third of a CPU or less.
    with cpu_hogs(2 * (os.cpu_count() or 1)):
        loaded = verdicts_for("mbpp+", tasks, samples, runner, config, show_progress=False)
    table = [(s.task_id, i % 3, q.passed, q.detail[:80], hog.passed, hog.detail[:80], hog.retried)
             for i, (s, q, hog) in enumerate(zip(samples, quiet, loaded, strict=True))]
    print("\n".join(map(str, table)))
    assert [v.passed for v in quiet] == [True, False, False] * len(LOAD_SLICE), table
    assert [v.passed for v in loaded] == [v.passed for v in quiet], table
