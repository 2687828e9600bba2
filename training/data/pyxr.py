"""PyX-R: faulty programs from verified PyX programs, with a rationale written from the real traces.

Bugs come from the agent's mutation engine (one expression changed at a statement of the entry
function). A mutant qualifies when it loads, behaves the same under two hash seeds, never times out
or touches the outside world, and fails at least one of the program's verified examples; mutants that
still pass some examples (subtle bugs) are preferred. The rationale has `### Execution Simulation`
(the buggy run of the failing test, from its trace), `### Root Cause Analysis` (observed vs expected,
the first step where the buggy and the correct runs diverge, and the Ochiai suspiciousness of the
changed line from the examples' coverage), `### Bug Fixing`, and the fixed code in `[Refined]`.
"""

from __future__ import annotations

import ast
import itertools
import random
from collections.abc import Sequence

from pydantic import BaseModel

from agent.localize import ochiai
from agent.mutation import Mutant, mutants_at
from agent.prompts import PyXRRecord, failed_test, refine_instruction
from sandbox.trace_render import render_monologue
from sandbox.tracer import Trace
from training.data.executability import judge
from training.data.executor import BatchExecutor, ExecItem, ItemRun
from training.data.models import Example, Program

_MAX_MUTANTS = 24


class Bug(BaseModel):
    """A program, one of its mutants and the example the mutant fails."""

    program: Program
    mutant: Mutant
    failing: Example
    buggy_output: str = ""
    buggy_error: str | None = None
    failing_lines: list[int] = []
    coverage: list[tuple[bool, list[int]]] = []  # (passed, lines run) per example


def candidate_mutants(program: Program, rng: random.Random) -> list[Mutant]:
    """Mutants of every statement line of the entry function, a deterministic sample of at most 24."""
    tree = ast.parse(program.code)
    function = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == program.entry), None)
    if function is None:
        return []
    lines = sorted({node.lineno for node in ast.walk(function) if isinstance(node, ast.stmt) and node is not function})
    found = [m for line in lines for m in mutants_at("solution.py", program.code, line)]
    return found if len(found) <= _MAX_MUTANTS else rng.sample(found, _MAX_MUTANTS)


def find_bugs(programs: Sequence[Program], executor: BatchExecutor, seed: int,
              per_round: int = 6) -> tuple[list[Bug], dict[str, int]]:
    """At most one bug per program; the counts say why the others got none.

    Mutants are tried a few per program at a time, and a program leaves the search once one of its
    mutants fails a test. One hash seed suffices here: the chosen bug is re-run under two at verification.
    """
    rng = random.Random(seed)
    queues = {p.key: candidate_mutants(p, rng) for p in programs}
    had_mutants = {key for key, queue in queues.items() if queue}
    found: dict[str, list[Bug]] = {}
    by_key = {p.key: p for p in programs}
    while True:
        pairs = [(by_key[key], m) for key, queue in queues.items() if key not in found for m in queue[:per_round]]
        if not pairs:
            break
        for key in queues:
            queues[key] = queues[key][per_round:]
        items = [ExecItem(code=m.source, entry=p.entry, calls=[e.input for e in p.examples]) for p, m in pairs]
        for (program, mutant), run in zip(pairs, executor.run_once(items), strict=True):
            bug = _as_bug(program, mutant, [run])
            if bug is not None:
                found.setdefault(program.key, []).append(bug)
    bugs, drops = [], {"no_mutant": 0, "no_failing_mutant": 0}
    for program in programs:
        options = found.get(program.key)
        if not options:
            drops["no_failing_mutant" if program.key in had_mutants else "no_mutant"] += 1
            continue
        subtle = [b for b in options if any(passed for passed, _ in b.coverage)]
        bugs.append((subtle or options)[0])
    return bugs, drops


def _as_bug(program: Program, mutant: Mutant, runs: list[ItemRun]) -> Bug | None:
    if judge(runs) not in (None, "no_valid_input_error"):
        return None
    calls = runs[0].calls
    if any(call.status not in ("ok", "error") for call in calls):
        return None
    coverage = [(call.status == "ok" and call.output == example.output, call.lines)
                for call, example in zip(calls, program.examples, strict=True)]
    failing = next((i for i, (passed, _) in enumerate(coverage) if not passed), None)
    if failing is None:
        return None
    call = calls[failing]
    return Bug(program=program, mutant=mutant, failing=program.examples[failing], buggy_output=call.output or "",
               buggy_error=call.error, failing_lines=call.lines, coverage=coverage)


def trace_rows(bug: Bug) -> tuple[tuple[str, str], tuple[str, str]]:
    """(code, call) of the buggy and of the correct run of the failing test."""
    call = f"{bug.program.entry}({bug.failing.input})"
    return (bug.mutant.source, call), (bug.program.code, call)


def fault_text(bug: Bug) -> str:
    """The refine instruction: problem, buggy solution, failed test (SemCoder's `fault` field)."""
    test = failed_test(f"{bug.program.entry}({bug.failing.input})", bug.failing.output)
    return refine_instruction(bug.program.description, bug.mutant.source.rstrip("\n"), test)


def rationale(bug: Bug, buggy: Trace, correct: Trace) -> str:
    simulation = render_monologue(buggy, line_offset=0).split("\n### Conclusion")[0].rstrip()
    outcome = f"raises `{buggy.exception}`" if buggy.exception else f"returns `{buggy.return_repr}`"
    simulation += f"\n\nSo the buggy code {outcome}, while the test expects `{bug.failing.output}`: the assertion fails."
    body = "\n\n".join([simulation, _root_cause(bug, buggy, correct), _fixing(bug)])
    return f"[MONOLOGUE]\n{body}\n[/MONOLOGUE]\n[Refined]\n```python\n{bug.program.code.rstrip()}\n```\n[/Refined]"


def _root_cause(bug: Bug, buggy: Trace, correct: Trace) -> str:
    line = bug.mutant.line
    buggy_text = _line(bug.mutant.source, line)
    fixed_text = _line(bug.program.code, line)
    out = ["### Root Cause Analysis",
           f"- Expected `{bug.failing.output}`, but the buggy code "
           f"{'raises `' + (buggy.exception or '') + '`' if buggy.exception else 'returns `' + str(buggy.return_repr) + '`'}."]
    divergence = _divergence(buggy, correct)
    if divergence:
        out.append(divergence)
    failed = sum(1 for passed, lines in bug.coverage if not passed and line in lines)
    passed = sum(1 for ok, lines in bug.coverage if ok and line in lines)
    total_failed = sum(1 for ok, _ in bug.coverage if not ok)
    score = ochiai(failed, passed, total_failed)
    out.append(f"- Line {line} (`{buggy_text}`) is run by {failed} of the {total_failed} failing test(s) and by "
               f"{passed} passing one(s) (Ochiai suspiciousness {score:.2f}).")
    out.append(f"- The root cause is on line {line}: `{buggy_text}` should be `{fixed_text}` "
               f"(the bug: {_bug_words(bug.mutant.description)}).")
    return "\n".join(out)


def _fixing(bug: Bug) -> str:
    line = bug.mutant.line
    return (f"### Bug Fixing\nRestore line {line} to `{_line(bug.program.code, line)}`; the rest of the code is "
            "right. With that change the failing test returns the expected value and the other tests still pass.")


def _bug_words(description: str) -> str:
    """The mutation engine's 'line N: a -> b' read the other way round: b is the bug, a was meant."""
    what = description.split(": ", 1)[-1]
    original, arrow, mutated = what.partition(" -> ")
    return f"`{mutated}` where `{original}` was meant" if arrow else what

def _line(code: str, line: int) -> str:
    lines = code.splitlines()
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""


def _divergence(buggy: Trace, correct: Trace) -> str | None:
    """The first line execution where the buggy run's line or resulting locals differ from the correct run."""
    steps_buggy, steps_correct = _steps(buggy), _steps(correct)
    for index, (b, c) in enumerate(zip(steps_buggy, steps_correct, strict=False)):
        if b == c:
            continue
        if b[0] != c[0]:
            return (f"- The runs part ways at step {index + 1}: after line {steps_buggy[index - 1][0] if index else '?'} "
                    f"the buggy code goes to line {b[0]}, the correct code to line {c[0]}.")
        changed = [f"`{k}` becomes `{v}` (correct: `{dict(c[1]).get(k)}`)" for k, v in b[1] if (k, v) not in c[1]]
        detail = "; ".join(changed) or "the locals differ"
        return f"- The first wrong state appears at line {b[0]} (step {index + 1}): {detail}."
    if len(steps_buggy) != len(steps_correct):
        return f"- The buggy run takes {len(steps_buggy)} steps where the correct one takes {len(steps_correct)}."
    return None


def _steps(trace: Trace) -> list[tuple[int, tuple[tuple[str, str], ...]]]:
    top = next((e.frame for e in trace.events if e.event == "call" and e.depth == 1), None)
    events = [e for e in trace.events if e.frame == top]
    return [(event.line, tuple(sorted(following.locals.items())))
            for event, following in itertools.pairwise(events) if event.event == "line"]


def record(bug: Bug, buggy: Trace, correct: Trace) -> PyXRRecord:
    return PyXRRecord(fault=fault_text(bug), response=rationale(bug, buggy, correct))
