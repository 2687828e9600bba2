"""Choosing the one failing test SemCoder's refine prompt shows: `retv = f(args)` / `assert retv == expected`.

The candidates are the benchmark's own asserts of the form `assert call(...) == value`: HumanEval's and
MBPP's tests (HumanEval+ shares HumanEval's base inputs), MBPP+'s example assert in its prompt. The sandbox runs them against the program and the first that fails is
shown. A program failing none of them (it fails only EvalPlus's extra inputs, or dies before any check)
gets the first assert, so every failing task still receives a concrete test.
"""

from __future__ import annotations

import ast
from typing import Any

from agent.refine import FailingTest
from sandbox import Job, JobResult, JobRunner
from sandbox.job import outer_limits

# The probe, a job program (sandbox/job.py): the program under test runs in a namespace of its own, as
# __main__ would, then each (call, expected) pair is evaluated there under the job's timer. The one record
# is the index of the first pair that fails (raises, runs out of time or compares unequal), None if none
# does; what the program prints goes to /dev/null. A program that dies loading fails every pair (index 0);
# one that ends the job itself (os._exit) leaves no record, and the host falls back to the first pair.
_PROBE = """
import os

from _semcoder_job import time_limit

_eval, _exec, _compile = eval, exec, compile  # bound before the program under test can patch builtins


def _first_failing(namespace, pairs, seconds):
    for index, (call, expected) in enumerate(pairs):
        time_limit(seconds)
        try:
            if not (_eval(call, namespace) == _eval(expected, namespace)):
                return index
        except BaseException:
            return index
        finally:
            time_limit(0)
    return None


def _index(data):
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    time_limit(data["seconds"])
    try:
        _exec(_compile(data["program"], "solution.py", "exec"), namespace)
    except BaseException:
        return 0
    finally:
        time_limit(0)
    return _first_failing(namespace, data["pairs"], data["seconds"])


def main(data, channel):
    send = channel.send  # bound before the program runs: replacing channel.send later changes nothing
    saved_stderr = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)  # what the program prints is never read (and must not fill the sandbox's output cap)
    os.dup2(null, 2)
    os.close(null)
    try:
        index = _index(data)
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
    send(index)
"""


def assert_pairs(test_code: str, entry_point: str) -> list[FailingTest]:
    """`assert call(x) == y` statements (HumanEval's `candidate` renamed to the entry point), in order."""
    try:
        tree = ast.parse(test_code)
    except SyntaxError:
        return []
    pairs = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare)):
            continue
        compare = node.test
        if len(compare.ops) != 1 or not isinstance(compare.ops[0], ast.Eq) or not isinstance(compare.left, ast.Call):
            continue
        call = ast.unparse(compare.left)
        if call.startswith("candidate("):
            call = entry_point + call.removeprefix("candidate")
        pairs.append(FailingTest(call=call, expected=ast.unparse(compare.comparators[0])))
    return pairs


def docstring_asserts(prompt: str) -> str:
    """The example asserts an MBPP+ prompt shows inside its docstring, as code."""
    return "\n".join(line.strip() for line in prompt.splitlines() if line.strip().startswith("assert "))


def _probe(program: str, pairs: list[FailingTest], time_limit_s: float) -> Job:
    """`time_limit_s` bounds loading the program and each pair's evaluation."""
    listed = [(pair.call, pair.expected) for pair in pairs]
    return Job(program=_PROBE, data={"program": program, "pairs": listed, "seconds": time_limit_s},
               limits=outer_limits(per_unit_s=time_limit_s, units=len(pairs) + 1))


def _first_index(result: JobResult, count: int) -> int:
    """The probe's index; 0 (the first assert) when the probe did not end properly or found none."""
    if not result.ok or len(result.records) != 1:
        return 0
    index = result.records[0]
    return index if type(index) is int and 0 <= index < count else 0


def first_failing_tests(programs: list[tuple[Any, str]], pairs_by_task: dict[str, list[FailingTest]],
                        runner: JobRunner, time_limit_s: float = 10.0) -> list[FailingTest | None]:
    """For each (task, program): the first benchmark assert it fails; None where the task has no usable assert."""
    futures = [runner.submit_job(_probe(program, pairs_by_task[task.task_id], time_limit_s))
               if pairs_by_task.get(task.task_id) else None for task, program in programs]
    chosen: list[FailingTest | None] = []
    for (task, _), future in zip(programs, futures, strict=True):
        if future is None:
            chosen.append(None)
            continue
        pairs = pairs_by_task[task.task_id]
        chosen.append(pairs[_first_index(future.result(), len(pairs))])
    return chosen
