"""Step verification: claims of monologues against real traces taken in the sandbox."""

from __future__ import annotations

import pytest

from sandbox import Pool
from training.data.executability import InputOptions, filter_programs
from training.data.executor import BatchExecutor
from training.data.generator import generate_program
from training.data.monologue import backward_monologue, forward_monologue, rename_entry
from training.data.step_check import check_steps, claims_of
from training.data.tracing import trace_rows

# Labels are line + 4, as the prompts number lines: def [L5], total = 0 [L6], for [L7], total += n [L8], return [L9].
LOOP = "def f(nums):\n    total = 0\n    for n in nums:\n        total += n\n    return total * 2\n"


@pytest.fixture(scope="module")
def loop_trace(pool: Pool):
    (trace,) = trace_rows([(LOOP, "f([1, 2, 3])")], 1, runner=pool)
    return trace


def test_teacher_free_monologues_of_real_traces_pass_the_checker(executor: BatchExecutor, pool: Pool) -> None:
    programs = filter_programs([generate_program(7_000 + i) for i in range(40)], executor, InputOptions(), 3).kept
    rows, tasks = [], []
    for program in programs:
        code = rename_entry(program.code, program.entry)
        for example in program.examples[:2]:
            rows.append((code, f"f({example.input})"))
            tasks.append((code, example.input))
    traces = trace_rows(rows, 2, runner=pool)
    checked = 0
    for (code, call_input), trace in zip(tasks, traces, strict=True):
        if trace.truncated:
            continue
        for monologue in (forward_monologue(code, call_input, trace), backward_monologue(code, call_input, trace)):
            result = check_steps(monologue, trace)
            assert result.ok, (code, call_input, result.first_disagreement, result.reason, monologue)
            checked += result.checked
    assert len(programs) >= 25 and checked > 10 * len(programs)  # the checker really read steps from them


def test_claims_are_read_in_the_styles_monologues_use(loop_trace) -> None:
    text = ("### Understanding the Function\nIt returns `0` when the list is empty.\n\n### Execution Simulation\n"
            "- [L6]: total = 0\n- **[L8]**: `total` is updated to `1`.\n- [L7]: `for n in nums:` takes `n = 2`.\n"
            "- The loop runs 3 times.\n- [L9]: returns `12`.\n\n### Conclusion\nThe function returns 12.\n"
            "[/MONOLOGUE]\n[ANSWER]\nassert f([1, 2, 3]) == 12\n[/ANSWER]")
    kinds = [(c.kind, c.labels, c.name, c.value) for c in claims_of(text)]
    assert kinds == [("value", [6], "total", "0"), ("value", [8], "total", "1"), ("value", [7], "n", "2"),
                     ("loop_count", [], None, "3"), ("return", [9], None, "12"), ("return", [], None, "12")]
    result = check_steps(text, loop_trace)
    assert (result.checked, result.agreeing, result.first_disagreement) == (6, 6, None)


@pytest.mark.parametrize(("wrong", "reason"), [
    ("- [L8]: `total` is updated to `5`.", "total was"),
    ("- [L6]: total = 1", "total was"),
    ("- The loop runs 4 times.", "the loops ran [3] times"),
    ("- [L9]: returns `6`.", "returned"),
    ("- [L12]: `total = 0`", "never ran"),
])
def test_a_planted_wrong_step_is_the_first_disagreement(loop_trace, wrong: str, reason: str) -> None:
    text = (f"### Execution Simulation\n- [L6]: `total = 0`\n{wrong}\n- [L9]: returns `12`.\n\n### Conclusion\n"
            "The call returns `12`.\n[/MONOLOGUE]\n[ANSWER]\nassert f([1, 2, 3]) == 12\n[/ANSWER]")
    result = check_steps(text, loop_trace)
    assert not result.ok and result.checked == 4 and result.agreeing == 3
    assert result.first_disagreement.text == wrong and reason in result.reason


SOLUTION = "def total_double(nums):\n    total = 0\n    for n in nums:\n        total += n\n    return total * 2\n"
PROBLEM = (f"[Problem]\nDouble the sum of a list.\n[/Problem]\n[Solution]\n```python\n{SOLUTION}```\n[/Solution]\n"
           "[Tests]\nassert total_double([1, 2, 3]) == 12\nassert total_double([4]) == 8\n[/Tests]\n")


def _teacher_monologue(call: str, value: str, first_total: str) -> str:
    """Right answer either way; `first_total` is the value of `total` after the first addition it claims."""
    return ("### Understanding the Function\nIt doubles a sum.\n\n### Key Properties and Constraints\n"
            "- It returns `0` for an empty list (a branch this call never takes: not a step).\n\n### Execution Simulation\n"
            f"- [L6]: `total = 0`\n- [L8]: `total` is updated to `{first_total}`.\n\n### Conclusion\n"
            f"The call returns `{value}`.\n[/MONOLOGUE]\n[ANSWER]\nassert f({call}) == {value}\n[/ANSWER]")


def test_a_teacher_sample_with_a_planted_wrong_step_is_rejected_even_with_the_right_answer(
        teacher_server, tmp_path) -> None:
    import json

    from training.data.executor import ExecOptions
    from training.data.pyx_pipeline import PyXConfig, run_pyx
    from training.data.teacher import TeacherConfig

    server, teacher = teacher_server

    def script(prompt: str) -> list[str]:
        if "Gain inspiration" in prompt:
            return [PROBLEM]
        if prompt.startswith("Simulate the Execution"):
            call = prompt.split("\nassert f(")[1].split(") == ??")[0]
            nums = json.loads(call)
            value = repr(sum(nums) * 2)
            # Sample 1: a planted wrong step (the first addition gives nums[0], not nums[0] + 1000).
            return [_teacher_monologue(call, value, repr(nums[0] + 1000)), _teacher_monologue(call, value,
                                                                                               repr(nums[0]))]
        return ["no"]

    teacher.script = script
    source = tmp_path / "seeds"
    source.mkdir()
    (source / "seed.py").write_text("def seed(x):\n    return x\n", encoding="utf-8")
    out = tmp_path / "pyx"
    config = PyXConfig(out=out, source=source, workers=2, execution=ExecOptions(call_timeout_s=0.5, item_timeout_s=3.0),
                       teacher=TeacherConfig(url=server.url, model="teacher", samples=2))
    stats, summary = run_pyx(config)
    # 2 forward samples and 2 backward ones ("no": no steps, and no answer, so pick_monologues drops them).
    assert stats.steps["teacher_samples"] == 4 and stats.steps["teacher_samples_rejected"] == 1
    assert stats.steps["teacher_steps_checked"] == 6 and stats.steps["teacher_steps_agreeing"] == 5
    assert stats.steps["trace_samples_rejected"] == 0 and stats.steps["trace_steps_checked"] > 0
    assert "step checks: " in summary
    rows = [json.loads(line) for line in (out / "pyx.jsonl").read_text().splitlines()]
    metas = [json.loads(line) for line in (out / "pyx.meta.jsonl").read_text().splitlines()]
    (forward,) = [(r, m) for r, m in zip(rows, metas, strict=True) if r["fwd_mnl"]]
    record, meta = forward
    first = json.loads(record["fwd_mnl"].split("\nassert f(")[1].split(") == ??")[0])[0]
    assert meta["monologue"] == "teacher"
    assert f"is updated to `{first}`" in record["response"]
    assert (meta["steps_checked"], meta["steps_agreeing"]) == (3, 3)
    backward = next(m for m in metas if m["task"] == "backward")
    assert backward["monologue"] == "trace" and backward["steps_checked"] == backward["steps_agreeing"] > 0
