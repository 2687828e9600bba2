"""With a scripted teacher on a real OpenAI-compatible loopback server: OSS-Instruct, rejection sampling."""

from __future__ import annotations

import json
import re
from pathlib import Path

from training.data.executor import ExecOptions
from training.data.pyx_pipeline import PyXConfig, run_pyx
from training.data.pyxr_pipeline import PyXRConfig, run_pyxr
from training.data.teacher import TeacherConfig

SOLUTION = (
    "def count_even(nums):\n"
    "    seen = []\n"
    "    for x in nums:\n"
    "        if x % 2 == 0 and x not in seen:\n"
    "            seen.append(x)\n"
    "    return len(seen)\n"
)
PROBLEM = (
    "[Problem]\nCount the distinct even numbers of a list.\n[/Problem]\n"
    f"[Solution]\n```python\n{SOLUTION}```\n[/Solution]\n"
    "[Tests]\nassert count_even([1, 2, 2, 4]) == 2\nassert count_even([]) == 0\n[/Tests]\n"
)
MONOLOGUE = (
    "### Understanding the Function\nIt counts distinct even numbers.\n\n### Key Properties and Constraints\n"
    "- Duplicates count once.\n\n### Execution Simulation\n- [L6]: `seen = []`.\n\n### Conclusion\nDone.\n"
    "[/MONOLOGUE]\n[ANSWER]\nassert f({call}) == {value}\n[/ANSWER]"
)
RATIONALE = (
    "[MONOLOGUE]\n### Execution Simulation\nThe buggy code runs.\n\n### Root Cause Analysis\nA changed line.\n\n"
    "### Bug Fixing\nRestore it.\n[/MONOLOGUE]\n[Refined]\n```python\n{code}```\n[/Refined]"
)


def _answer_forward(prompt: str) -> list[str]:
    """A wrong sample first, then the true output (the script runs the code it was shown)."""
    code = re.sub(r" # \[L\d+\]$", "", prompt.split("[PYTHON]\n")[1].split("\nassert f(")[0], flags=re.M)
    call = prompt.split("\nassert f(")[1].split(") == ??")[0]
    namespace: dict = {}
    exec(code, namespace)
    value = repr(eval(f"f({call})", namespace))
    return [MONOLOGUE.format(call=call, value=value + " + 1"), MONOLOGUE.format(call=call, value=value)]


def _script(prompt: str) -> list[str]:
    if "Gain inspiration" in prompt:
        return [PROBLEM]
    if prompt.startswith("Simulate the Execution"):
        return _answer_forward(prompt)
    if prompt.startswith("Debug and Refine"):
        return [RATIONALE.format(code="def count_even(nums):\n    return 0\n"), RATIONALE.format(code=SOLUTION)]
    return ["I cannot deduce inputs."]  # backward prompts: never verifiable, so the trace version is used


def test_teacher_problems_monologues_and_rationales_are_kept_only_when_verified(teacher_server, tmp_path: Path,
                                                                                corpus: Path) -> None:
    server, teacher = teacher_server
    teacher.script = _script
    config = TeacherConfig(url=server.url, model="teacher", samples=2)
    fast = ExecOptions(call_timeout_s=0.5, item_timeout_s=3.0)
    pyx_out = tmp_path / "pyx"
    stats, _ = run_pyx(PyXConfig(out=pyx_out, source=corpus, teacher=config, execution=fast))
    metas = [json.loads(line) for line in (pyx_out / "pyx.meta.jsonl").read_text().splitlines()]
    # Every corpus seed inspired the same problem: one program survives dedupe, from the teacher.
    assert {m["origin"]["kind"] for m in metas} == {"teacher"}
    assert stats.drops["decontaminate:duplicate"] == 7  # 8 seeds (docstrings not needed with a teacher)
    assert {(m["task"], m["monologue"]) for m in metas} == {("nl2code", None), ("forward", "teacher"),
                                                            ("backward", "trace")}
    assert stats.drops["monologue:teacher_rejected"] == 1
    rows = [json.loads(line) for line in (pyx_out / "pyx.jsonl").read_text().splitlines()]
    forward = next(r for r in rows if r["fwd_mnl"])
    assert forward["response"].startswith("### Understanding the Function\nIt counts distinct even numbers.")
    assert not forward["response"].rstrip().endswith("+ 1\n[/ANSWER]")
    assert next(r for r in rows if r["nl"])["nl"] == "Count the distinct even numbers of a list."
    assert any(p.startswith("Deduce the Semantic Constraints") for p in teacher.prompts)

    pyxr_out = tmp_path / "pyxr"
    _, pyxr_summary = run_pyxr(PyXRConfig(pyx=pyx_out, out=pyxr_out, teacher=config, min_examples=2))
    (record,) = [json.loads(line) for line in (pyxr_out / "pyx_r.jsonl").read_text().splitlines()]
    (meta,) = [json.loads(line) for line in (pyxr_out / "pyx_r.meta.jsonl").read_text().splitlines()]
    assert meta["monologue"] == "teacher" and record["response"].endswith(f"```python\n{SOLUTION}```\n[/Refined]")
    assert "record sources: teacher/teacher 1" in pyxr_summary
