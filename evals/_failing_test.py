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
from evals._jobs import JobRunner
from sandbox import ExecRequest, Limits

_MARKER = "__SEMCODER_FIRST_FAILING__"
_PROBE = """

def __semcoder_first_failing(pairs):
    for index, (call, expected) in enumerate(pairs):
        try:
            if not (eval(call) == eval(expected)):
                return index
        except BaseException:
            return index
    return None

print({marker!r}, __semcoder_first_failing({pairs!r}))
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


def _probe(program: str, pairs: list[FailingTest], time_limit_s: float) -> ExecRequest:
    listed = [(pair.call, pair.expected) for pair in pairs]
    return ExecRequest(code=program + _PROBE.format(marker=_MARKER, pairs=listed),
                       limits=Limits(wall_time_s=time_limit_s))


def _first_index(stdout: str) -> int:
    for line in stdout.splitlines():
        if line.startswith(_MARKER):
            value = line.removeprefix(_MARKER).strip()
            return 0 if value == "None" else int(value)
    return 0


def first_failing_tests(programs: list[tuple[Any, str]], pairs_by_task: dict[str, list[FailingTest]],
                        runner: JobRunner, time_limit_s: float = 10.0) -> list[FailingTest | None]:
    """For each (task, program): the first benchmark assert it fails; None where the task has no usable assert."""
    futures = [runner.submit(_probe(program, pairs_by_task[task.task_id], time_limit_s))
               if pairs_by_task.get(task.task_id) else None for task, program in programs]
    chosen: list[FailingTest | None] = []
    for (task, _), future in zip(programs, futures, strict=True):
        if future is None:
            chosen.append(None)
            continue
        chosen.append(pairs_by_task[task.task_id][_first_index(future.result().stdout)])
    return chosen
