"""Verification against real execution: each response is accepted only if what it claims really happens.

Forward monologue: the [ANSWER] assertion calls `f` on the record's input and its value equals the
output of a fresh run. Backward: the proposed call, run in the sandbox, returns the given output.
PyX-R: the `[Refined]` code passes every verified example under two hash seeds, the buggy code still
fails the record's test, and the fix passes the repair loop's static screen (agent/verdict.py: nothing a bug
fix does not need, such as atexit, gc, os._exit or pytest internals), so a forged fix never becomes data.
Candidates are tried in order; the first that passes is kept.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from pydantic import BaseModel

from agent.parsing import ParseError, parse_monologue, parse_refine_response
from agent.verdict import screen
from training.data.executability import HASH_SEEDS
from training.data.executor import BatchExecutor, ExecItem
from training.data.models import Example


class MonologueTask(BaseModel):
    """One monologue to produce: code (entry renamed `f`), the example, the direction, candidate responses."""

    code: str
    example: Example
    direction: str  # "forward" | "backward"
    responses: list[str] = []


class FixTask(BaseModel):
    entry: str
    buggy: str
    failing: Example
    examples: list[Example]
    responses: list[str] = []


def same_value(left: str, right: str) -> bool:
    try:
        a, b = ast.literal_eval(left), ast.literal_eval(right)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return a == b and repr(a) == repr(b)


def _call_args(call: str) -> str | None:
    """'f(1, [2])' -> '1, [2]' when it is a call of f with literal positional arguments only."""
    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "f") or node.keywords:
        return None
    try:
        for arg in node.args:
            ast.literal_eval(arg)
    except (ValueError, SyntaxError, TypeError):
        return None
    return ", ".join(ast.unparse(arg) for arg in node.args)


def pick_monologues(tasks: Sequence[MonologueTask], executor: BatchExecutor) -> list[str | None]:
    """The first response of each task whose answer really holds."""
    claims: list[tuple[int, str, str]] = []  # (task, response, call args)
    for index, task in enumerate(tasks):
        for response in task.responses:
            parsed = parse_monologue(response, task.direction, finish_reason="stop")  # type: ignore[arg-type]
            if isinstance(parsed, ParseError):
                continue
            args = _call_args(parsed.answer.call)
            expected = task.example.output
            if args is None or not same_value(parsed.answer.value, expected):
                continue
            if task.direction == "forward" and not same_value(f"({args},)", f"({task.example.input},)"):
                continue
            claims.append((index, response, args))
    items = [ExecItem(code=tasks[i].code, entry="f", calls=[args]) for i, _, args in claims]
    runs = executor.run_once(items) if items else []
    chosen: list[str | None] = [None] * len(tasks)
    for (index, response, _), run in zip(claims, runs, strict=True):
        call = run.calls[0] if run.calls else None
        if chosen[index] is None and call and call.status == "ok" and same_value(call.output or "", tasks[index].example.output):
            chosen[index] = response
    return chosen


def pick_fixes(tasks: Sequence[FixTask], executor: BatchExecutor) -> list[str | None]:
    """The first response of each task whose refined code passes all examples while the bug still fails."""
    claims: list[tuple[int, str, str]] = []
    for index, task in enumerate(tasks):
        for response in task.responses:
            parsed = parse_refine_response(response, finish_reason="stop")
            if not isinstance(parsed, ParseError) and not screen({"solution.py": task.buggy},
                                                                 {"solution.py": parsed.code}):
                claims.append((index, response, parsed.code))
    items = []
    for index, _, code in claims:
        task = tasks[index]
        items.append(ExecItem(code=code, entry=task.entry, calls=[e.input for e in task.examples]))
        items.append(ExecItem(code=task.buggy, entry=task.entry, calls=[task.failing.input]))
    runs = executor.runs(items, HASH_SEEDS) if items else []
    chosen: list[str | None] = [None] * len(tasks)
    for number, (index, response, _) in enumerate(claims):
        fixed_runs, buggy_runs = runs[2 * number], runs[2 * number + 1]
        if chosen[index] is None and _passes(fixed_runs, tasks[index].examples) and _fails(buggy_runs, tasks[index].failing):
            chosen[index] = response
    return chosen


def _passes(runs, examples: list[Example]) -> bool:
    return all(
        run.loaded and len(run.calls) == len(examples)
        and all(c.status == "ok" and same_value(c.output or "", e.output) for c, e in zip(run.calls, examples, strict=True))
        for run in runs
    )


def _fails(runs, failing: Example) -> bool:
    return all(
        run.loaded and run.calls and (run.calls[0].status == "error"
                                      or (run.calls[0].status == "ok" and not same_value(run.calls[0].output or "", failing.output)))
        for run in runs
    )
