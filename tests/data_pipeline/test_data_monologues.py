"""Teacher-free monologues and PyX-R rationales: SemCoder's sections, real line labels, verified answers."""

from __future__ import annotations

import re

from agent.parsing import parse_monologue, parse_refine_response
from agent.prompts import label_lines
from training.data import pyxr
from training.data.executor import BatchExecutor
from training.data.models import Example, Origin, Program
from training.data.monologue import backward_monologue, forward_monologue, rename_entry
from training.data.tracing import trace_rows
from training.data.verify import FixTask, MonologueTask, pick_fixes, pick_monologues

CODE = (
    "def f(text, n):\n"
    "    out = []\n"
    "    for i, ch in enumerate(text):\n"
    "        if i % n == 0:\n"
    "            out.append(ch.upper())\n"
    "        else:\n"
    "            out.append(ch)\n"
    "    return ''.join(out)\n"
)


def test_rename_entry_renames_only_the_name_tokens() -> None:
    code = "def count(xs):\n    s = 'count'\n    return count(xs[1:]) if xs else 0\n"
    assert rename_entry(code, "count") == "def f(xs):\n    s = 'count'\n    return f(xs[1:]) if xs else 0\n"


def test_forward_monologue_has_semcoders_sections_and_true_labels() -> None:
    (trace,) = trace_rows([(CODE, "f('hello', 3)")], workers=1)
    text = forward_monologue(CODE, "'hello', 3", trace)
    parsed = parse_monologue(text, "forward", finish_reason="stop")
    assert not hasattr(parsed, "problem"), parsed
    assert list(parsed.sections)[:4] == ["Understanding the Function", "Key Properties and Constraints",
                                         "Execution Simulation", "Conclusion"]
    assert parsed.answer.call == "f('hello', 3)" and parsed.answer.value == "'HelLo'"
    assert text.endswith("[/MONOLOGUE]\n[ANSWER]\nassert f('hello', 3) == 'HelLo'\n[/ANSWER]")
    labelled = {int(m.group(2)): m.group(1) for m in re.finditer(r"^(.*) # \[L(\d+)\]$", label_lines(CODE), re.M)}
    for label, statement in re.findall(r"\[L(\d+)\]: `([^`]*)`", text):
        assert labelled[int(label)].strip() == statement


def test_backward_monologue_deduces_from_the_output_to_the_parameters() -> None:
    (trace,) = trace_rows([(CODE, "f('hello', 3)")], workers=1)
    text = backward_monologue(CODE, "'hello', 3", trace)
    parsed = parse_monologue(text, "backward", finish_reason="stop")
    assert "Reverse Deduction" in parsed.sections and "Execution Simulation" not in parsed.sections
    deduction = parsed.sections["Reverse Deduction"]
    assert deduction.startswith("- The final output is `'HelLo'`, returned at [L12]")
    assert "`text` is a parameter: for the output above it must be `'hello'`" in deduction
    assert parsed.answer.call == "f('hello', 3)"


def test_only_answers_that_really_hold_are_picked(executor: BatchExecutor) -> None:
    example = Example(input="'hello', 3", output="'HelLo'")
    (trace,) = trace_rows([(CODE, "f('hello', 3)")], workers=1)
    right = forward_monologue(CODE, example.input, trace)
    wrong = right.replace("== 'HelLo'", "== 'HELLO'")
    other_input = backward_monologue(CODE, example.input, trace).replace("f('hello', 3)", "f('helLo', 3)")
    bad_input = other_input.replace("f('helLo', 3)", "f('world', 3)")
    tasks = [MonologueTask(code=CODE, example=example, direction="forward", responses=[wrong, right]),
             MonologueTask(code=CODE, example=example, direction="forward", responses=[wrong]),
             MonologueTask(code=CODE, example=example, direction="backward", responses=[bad_input, other_input])]
    assert pick_monologues(tasks, executor) == [right, None, other_input]


def _program() -> Program:
    code = "def clip(nums, k):\n    out = []\n    for x in nums:\n        if x > k:\n            out.append(k)\n        else:\n            out.append(x)\n    return out\n"
    examples = [Example(input="[1, 5, 3], 3", output="[1, 3, 3]"), Example(input="[0, 9], 4", output="[0, 4]"),
                Example(input="[], 1", output="[]")]
    return Program(code=code, entry="clip", description="Clip every number of `nums` to at most `k`.",
                   origin=Origin(kind="corpus", ref="test::clip"), examples=examples)


def test_pyxr_bug_rationale_and_verified_fix(executor: BatchExecutor) -> None:
    bugs, drops = pyxr.find_bugs([_program()], executor, seed=0)
    assert len(bugs) == 1 and drops == {"no_mutant": 0, "no_failing_mutant": 0}
    bug = bugs[0]
    assert bug.mutant.source != bug.program.code
    buggy, correct = trace_rows([*pyxr.trace_rows(bug)], workers=1)
    record = pyxr.record(bug, buggy, correct)
    assert record.fault.startswith("### Problem\nClip every number")
    assert f"### Failed Test\n```python\nretv = clip({bug.failing.input})\nassert retv == {bug.failing.output}\n\n```\n" in record.fault
    parsed = parse_refine_response(record.response, finish_reason="stop")
    assert parsed.code == bug.program.code.rstrip("\n")
    assert f"line {bug.mutant.line}" in parsed.sections["Root Cause Analysis"]
    task = FixTask(entry="clip", buggy=bug.mutant.source, failing=bug.failing, examples=bug.program.examples,
                   responses=[record.response.replace(bug.program.code.rstrip(), bug.mutant.source.rstrip()),
                              record.response])
    assert pick_fixes([task], executor) == [record.response]
