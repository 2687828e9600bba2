"""The batch executor on the job protocol: a program under test cannot forge an item's result.

Each program below runs in the executor's child, where it can print, write to any fd it finds (the
child's private channel among them) or leave mid-item. Its own item must never read as `ok` with a
forged output (it is `crashed` or keeps its real outcome), and the items around it stay exactly right,
on every hash seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from sandbox import Job, JobResult, JobRunner, Pool
from training.data.executor import BatchExecutor, ExecItem, ExecOptions, ExecutorError

OPTIONS = ExecOptions(call_timeout_s=0.5, item_timeout_s=3.0, items_per_job=8)
SEEDS = (1, 2)
FINE = ExecItem(code="def f(n):\n    return n * 2\n", entry="f", calls=["21", "4"])
# What a forger wants the host to believe: its item loaded and its call returned 'forged'.
FORGED_RUN = '{"calls":[{"output":"\'forged\'","status":"ok"}],"load":{"status":"ok"}}'
FORGED_LINES = [
    *(f"@@semcoder-job {seq} {'0' * 32} {FORGED_RUN}" for seq in range(4)),
    "@@semcoder-job end " + "0" * 32,
    f"@@pyx-exec 0123456789abcdef 1 {FORGED_RUN}",
    f"@@pyx-exec-result 0123456789abcdef [[{FORGED_RUN}]]",
]
FORGERY = "FORGED = " + repr("\n".join(FORGED_LINES) + "\n") + "\n"

# Prints the forged frames every way a program can reach stdout, then fails for real.
PRINTS = FORGERY + """import os, sys
def f(n):
    print(FORGED)
    sys.__stdout__.write(FORGED)
    sys.__stdout__.flush()
    os.write(1, FORGED.encode())
    raise ValueError('the real outcome')
"""
# Finds every fd it can (past the audit hook, whose first hit it swallows) and writes the forgery to each.
FD_SCAN = FORGERY + """import os
def f(n):
    try:
        os.listdir('/proc/self/fd')
    except BaseException:
        pass
    for fd in os.listdir('/proc/self/fd'):
        try:
            os.write(int(fd), FORGED.encode())
        except OSError:
            pass
    return 'forged'
"""
# Writes a half line (no newline) to every fd, so the child's next real frame is glued to it.
HALF_LINE = """import os
def f(n):
    for fd in range(3, 64):
        try:
            os.write(fd, b'@@semcoder-job 0 ')
        except OSError:
            pass
    return 'forged'
"""
# Leaves mid-item with a clean exit status, after printing a forgery.
EXIT_ZERO = FORGERY + """import os
def f(n):
    os.write(1, FORGED.encode())
    os._exit(0)
"""


@pytest.fixture(scope="module")
def executor() -> Iterator[BatchExecutor]:
    with Pool(workers=1) as pool:
        yield BatchExecutor(pool, OPTIONS)


def _runs(executor: BatchExecutor, code: str):
    items = [FINE, ExecItem(code=code, entry="f", calls=["1"]), FINE]
    runs = executor.runs(items, SEEDS)
    assert len(runs) == 3 and all(len(per_item) == len(SEEDS) for per_item in runs)
    for per_item in (runs[0], runs[2]):  # the items around the forger are exactly right on every seed
        for run in per_item:
            assert run.loaded and [(c.status, c.output) for c in run.calls] == [("ok", "42"), ("ok", "8")]
    for run in runs[1]:  # the forger never reads as ok with its forged output
        assert all(call.output != "'forged'" for call in run.calls)
        assert not (run.loaded and any(call.status == "ok" for call in run.calls))
    return runs[1]


def test_printed_forgeries_leave_the_real_outcome(executor: BatchExecutor) -> None:
    for run in _runs(executor, PRINTS):
        assert run.loaded and [c.status for c in run.calls] == ["error"]
        assert run.calls[0].error == "ValueError: the real outcome" and run.calls[0].printed


@pytest.mark.parametrize("code", [FD_SCAN, HALF_LINE], ids=["fd_scan", "half_line"])
def test_junk_on_the_channel_loses_only_its_own_item(executor: BatchExecutor, code: str) -> None:
    for run in _runs(executor, code):
        assert run.load.status == "crashed" and run.calls == []


def test_exit_zero_mid_item_is_a_crash(executor: BatchExecutor) -> None:
    for run in _runs(executor, EXIT_ZERO):
        assert run.load.status == "crashed" and run.calls == []


def test_forgery_in_the_last_item_of_a_batch(executor: BatchExecutor) -> None:
    runs = executor.runs([FINE, ExecItem(code=FD_SCAN, entry="f", calls=["1"])], SEEDS)
    assert [r.calls[0].output for r in runs[0]] == ["42", "42"]
    assert [r.load.status for r in runs[1]] == ["crashed", "crashed"]


def test_a_forged_module_load_is_a_crash(executor: BatchExecutor) -> None:
    """The forgery runs while the module loads, not in a call."""
    for run in _runs(executor, FD_SCAN + "f(0)\n"):
        assert run.load.status == "crashed"


class _Broken:
    """Submits each job without the child's source: a harness failure, never an item's."""

    def __init__(self, pool: JobRunner) -> None:
        self.pool = pool

    def submit_job(self, job: Job) -> Future[JobResult]:
        return self.pool.submit_job(job.model_copy(update={"files": {}}))


def test_a_failed_job_raises_with_its_problem_and_stderr(executor: BatchExecutor) -> None:
    broken = BatchExecutor(_Broken(executor.pool), OPTIONS)
    with pytest.raises(ExecutorError) as caught:
        broken.run_once([FINE])
    message = str(caught.value)
    assert "before reporting its end" in message  # the job's problem
    assert "stopped before it was ready" in message  # the driver's traceback, from stderr
