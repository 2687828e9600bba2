"""The tracer as a job (sandbox/job.py): traced code cannot forge a trace, and jobs run where the caller says.

Traced code runs in the tracer's own process: it can print frames, write to every fd it finds (the
channel among them) or leave early. None of that may yield a forged trace: printing changes nothing,
breaking the channel gives that row the interference trace, leaving gives it a death trace, and the
other rows keep their real traces.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future

import pytest

from sandbox import Job, JobResult, Pool, SandboxError, run_job
from sandbox._models import ExecResult, Status
from sandbox._tracer_child import encode_result
from sandbox.job import _death
from sandbox.tracer import (
    INTERFERENCE_MESSAGE,
    TraceRow,
    read_traces,
    trace_batch,
    trace_batch_json,
    trace_call,
)

BEFORE = TraceRow(code="def f():\n    x = 1\n    return x\n", call="f()")
AFTER = TraceRow(code="def f(n):\n    return [n] * 2\n", call="f(4)")
FORGED_JOB_FRAME = "@@semcoder-job 1 " + "0" * 32 + ' "{}"'
OLD_FRAME = '@@semcoder-trace 0123456789abcdef 0 {"return_repr": "42", "exception": null}'


def _fd_scan(line: str, then: str = "") -> str:
    """Code whose call writes `line` to every fd of its process (the tracer's channel among them)."""
    return (
        "import os\n"
        "def f():\n"
        "    for fd in os.listdir('/proc/self/fd'):\n"
        "        try:\n"
        f"            os.write(int(fd), {(line + chr(10)).encode()!r})\n"
        "        except OSError:\n"
        "            pass\n"
        f"    {then or 'pass'}\n"
        "    return 42\n"
    )


def _assert_neighbours_intact(traces: list) -> None:
    assert traces[0].return_repr == "1" and traces[0].exception is None
    assert [e.event for e in traces[0].events] == ["call", "line", "line", "return"]
    assert traces[2].return_repr == "[4, 4]" and traces[2].exception is None and traces[2].events


def test_printed_frames_are_the_programs_output_and_the_trace_is_real() -> None:
    code = (
        "import os, sys\n"
        "def f():\n"
        f"    print({FORGED_JOB_FRAME!r})\n"
        f"    print({OLD_FRAME!r})\n"
        f"    sys.__stdout__.write({OLD_FRAME!r} + '\\n')\n"
        f"    os.write(1, {(FORGED_JOB_FRAME + chr(10)).encode()!r})\n"
        "    return 7\n"
    )
    traces = trace_batch([BEFORE, TraceRow(code=code, call="f()"), AFTER])
    _assert_neighbours_intact(traces)
    assert traces[1].return_repr == "7" and traces[1].exception is None
    assert FORGED_JOB_FRAME in traces[1].output and OLD_FRAME in traces[1].output


@pytest.mark.parametrize(
    "code",
    [
        _fd_scan("junk"),
        _fd_scan(FORGED_JOB_FRAME),
        _fd_scan(OLD_FRAME),
        _fd_scan(FORGED_JOB_FRAME, then="os._exit(0)"),  # a broken channel, then a clean exit: still interference
    ],
    ids=["junk", "forged_job_frame", "old_trace_frame", "forged_then_exit"],
)
def test_junk_on_every_fd_gets_the_interference_trace(code: str) -> None:
    traces = trace_batch([BEFORE, TraceRow(code=code, call="f()"), AFTER])
    _assert_neighbours_intact(traces)
    assert traces[1].exception == INTERFERENCE_MESSAGE
    assert traces[1].return_repr is None and traces[1].events == []


def test_os_exit_zero_gets_a_death_trace() -> None:
    code = "import os\ndef f():\n    os._exit(0)\n"
    traces = trace_batch([BEFORE, TraceRow(code=code, call="f()"), AFTER])
    _assert_neighbours_intact(traces)
    assert traces[1].exception == "SystemExit: the process ended (exit code 0) before the call returned"
    assert traces[1].return_repr is None and traces[1].events == []


PROGRAM = "def f(nums):\n    total = 0\n    for n in nums:\n        total += n\n    print(total)\n    return total\n"


def test_trace_call_on_the_callers_pool_gives_the_cold_trace() -> None:
    cold = trace_call(PROGRAM, "f([1, 2, 3])")
    with Pool(workers=1) as pool:
        warm = trace_call(PROGRAM, "f([1, 2, 3])", runner=pool)
        rows = [BEFORE, TraceRow(code=_fd_scan("junk"), call="f()"),
                TraceRow(code="import os\ndef f():\n    os._exit(3)\n", call="f()"), AFTER]
        batch = trace_batch(rows, runner=pool)
    assert warm.model_dump() == cold.model_dump()
    assert warm.return_repr == "6" and warm.output == "6\n"
    assert [t.exception for t in batch] == [
        None, INTERFERENCE_MESSAGE, "SystemExit: the process ended (exit code 3) before the call returned", None
    ]
    assert batch[3].return_repr == "[4, 4]"


# What the traced code can see of its process: whether the tracer's job was preloaded, and where it imports from.
SEEN = "import sys\ndef f():\n    return (sys.modules['_semcoder_job'].PRELOADED is not None, sys.path[1:])\n"


def test_a_pool_prepares_the_next_tracer_job_and_the_trace_is_the_cold_one() -> None:
    """On a warm pool the tracer's next job starts in a child that imported the tracer's modules and compiled its
    program ahead: the traced code finds the same sys.path (no site-packages) and the same trace as cold."""
    cold = trace_call(SEEN, "f()")
    with Pool(workers=1) as pool:
        traces = [trace_call(SEEN, "f()", runner=pool) for _ in range(3)]
    assert cold.return_repr.startswith("(False, ")
    assert [t.return_repr.startswith("(True, ") for t in traces] == [False, True, True]  # the first sets the kind
    paths = {t.return_repr.split(", ", 1)[1] for t in [cold, *traces]}
    assert len(paths) == 1 and "site-packages" not in paths.pop()
    assert [(e.event, e.line, e.locals) for e in traces[2].events] == [(e.event, e.line, e.locals) for e in cold.events]


class _CountingRunner:
    """A JobRunner that runs each job cold and remembers it."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def submit_job(self, job: Job) -> Future[JobResult]:
        self.jobs.append(job)
        future: Future[JobResult] = Future()
        future.set_result(run_job(job))
        return future


def test_every_job_goes_to_the_runner_the_fresh_one_after_a_death_too() -> None:
    runner = _CountingRunner()
    traces = trace_batch([BEFORE, TraceRow(code="import os\ndef f():\n    os._exit(0)\n", call="f()"), AFTER],
                         runner=runner)
    # Held records die with the first job, so its rows run again unheld: the death is pinned on its row, and the
    # row after it goes to a fresh (held) job.
    assert [(len(job.data["rows"]), job.data["hold"]) for job in runner.jobs] == [(3, True), (3, False), (1, True)]
    assert traces[1].exception == "SystemExit: the process ended (exit code 0) before the call returned"
    assert (traces[0].return_repr, traces[2].return_repr) == ("1", "[4, 4]")


# --------------------------------------------------------------------- reading a job's records, no sandbox

ROWS = [BEFORE, BEFORE, AFTER]
READY = {"ready": {"python": "3"}}
# A row's record as the host reads it: the child's encoded result, framed as it is (send_json), decoded once.
ROW_RECORD = json.loads(encode_result({"return_repr": "1", "exception": None, "events": [], "frames": [],
                                       "truncated": False, "output": ""}))


def _result(records: list, *, ended: bool = False, problem: str | None = None, status: Status = Status.ok,
            exit_code: int = 0, truncated: bool = False) -> JobResult:
    execution = ExecResult(status=status, exit_code=exit_code, stdout="", stderr="boom", stdout_truncated=truncated,
                           duration_s=0.0, isolation="partial")
    # As sandbox.job.read judges: a problem on the channel of a process no limit killed is interference.
    interfered = bool(problem) and not truncated and status in (Status.ok, Status.error)
    if problem is None:
        problem = "" if ended else _death(execution)
    return JobResult(records=records, ended=ended, problem=problem, interfered=interfered, execution=execution)


def test_a_job_without_its_ready_record_is_a_sandbox_error() -> None:
    with pytest.raises(SandboxError, match="the tracer did not start"):
        read_traces(_result([]), ROWS)
    with pytest.raises(SandboxError, match="the tracer did not start"):
        read_traces(_result([ROW_RECORD], ended=True), ROWS)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (_result([READY, ROW_RECORD]), "SystemExit: the process ended (exit code 0) before the call returned"),
        (_result([READY, ROW_RECORD], status=Status.error, exit_code=9),
         "SystemExit: the process ended (exit code 9) before the call returned"),
        (_result([READY, ROW_RECORD], problem="a malformed report on the channel (line 3): 'junk'"),
         INTERFERENCE_MESSAGE),
        (_result([READY, ROW_RECORD], problem="a report without the job's key (line 3)", status=Status.error,
                 exit_code=1), INTERFERENCE_MESSAGE),
        # A limit killed the process mid-frame: the cut frame is the kill's doing, not interference.
        (_result([READY, ROW_RECORD], problem="a malformed report on the channel (line 3): '@@semc'",
                 status=Status.timeout, exit_code=-9), "TimeoutError: the sandbox's wall or CPU limit killed the process"),
        (_result([READY, ROW_RECORD], problem="a malformed report on the channel (line 3): '@@semc'",
                 status=Status.output_limit, truncated=True),
         "OSError: the program wrote past the sandbox's output limit"),
        (_result([READY, ROW_RECORD, {"return_repr": "forged"}], ended=True), INTERFERENCE_MESSAGE),
        (_result([READY, ROW_RECORD, "a string"], ended=True), INTERFERENCE_MESSAGE),
        (_result([READY, ROW_RECORD, {**ROW_RECORD, "return_repr": 1}], ended=True), INTERFERENCE_MESSAGE),
        (_result([READY, ROW_RECORD], ended=True), INTERFERENCE_MESSAGE),  # ended without every row
    ],
    ids=["exit0", "exit9", "malformed", "unkeyed", "timeout_cut", "output_cap", "record_missing_fields",
         "record_a_string", "record_wrong_types", "ended_early"],
)
def test_the_row_a_job_failed_on_gets_a_death_or_interference_trace(result: JobResult, expected: str) -> None:
    done, failed = read_traces(result, ROWS)
    assert [t.return_repr for t in done] == ["1"]
    assert failed is not None and failed.exception == expected
    assert failed.source == ROWS[1].code and failed.return_repr is None


def test_records_of_every_row_are_read_even_when_the_channel_broke_after_them() -> None:
    result = _result([READY, ROW_RECORD, ROW_RECORD, ROW_RECORD], problem="a malformed report on the channel (line 5)")
    done, failed = read_traces(result, ROWS)
    assert failed is None and len(done) == 3


def test_a_pool_converts_the_rows_records_as_they_come(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a warm pool the JSON lines are made in the pool's thread while the job still runs; they are the lines a
    cold run gives."""
    from sandbox import tracer

    threads: list[str] = []
    convert = tracer._json_line

    def counting(item, row=None):
        threads.append(threading.current_thread().name)
        return convert(item, row)

    rows = [TraceRow(code=PROGRAM, call=f"f([{i}, 2, 3])") for i in range(30)]
    cold = list(trace_batch_json(rows))
    monkeypatch.setattr(tracer, "_json_line", counting)
    with Pool(workers=1) as pool:
        warm = list(trace_batch_json(rows, runner=pool))
    assert warm == cold
    assert threads.count("sandbox-slot") == len(rows)  # every row's line was made as its record came

