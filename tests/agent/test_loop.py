"""The loop with a scripted model and the real sandbox: best attempt kept, samples compared, budgets, prompts."""

from __future__ import annotations

from pathlib import Path

from agent_helpers import GRADE_TESTS, GRADES, ScriptedModel, refined, write

from agent.state import Attempt, RunConfig
from agent.tasks import function_task

BUGGY, TESTS = GRADES, GRADE_TESTS
HALF_FIX = BUGGY.replace("score > 90", "score >= 90")
FULL_FIX = HALF_FIX.replace("score > 80", "score >= 80")
BROKEN = "def grade(score):\n    return 'F'\n"


def task(tmp_path: Path):
    write(tmp_path, {"grades.py": BUGGY, "test_grades.py": TESTS})
    return function_task(tmp_path / "grades.py", tmp_path / "test_grades.py")


def model_config(**overrides) -> RunConfig:
    """SemCoder's raw prompts (the name of a scripted model would otherwise mean the chat dialect)."""
    return RunConfig(model="scripted:x", patcher="model", dialect="semcoder", **overrides)


def test_a_later_worse_patch_never_replaces_the_best(tmp_path, run_graph):
    model = ScriptedModel([[refined(HALF_FIX)], [refined(BROKEN)], ["no code at all"]])
    final = run_graph(task(tmp_path), model_config(max_iterations=3, samples=1), model)
    best = Attempt(**final["best"])
    assert final["status"] == "not_fixed" and "iteration budget" in final["stop_reason"]
    assert (best.passed, best.total, best.origin, best.iteration) == (3, 4, "model sample 0", 1)
    assert best.files["grades.py"] == HALF_FIX
    assert final["executions"] == 1 + 1 + 1  # the original, then one candidate per parseable answer
    assert final["iteration"] == 3 and len(model.prompts) == 3


def test_the_best_of_several_samples_wins(tmp_path, run_graph):
    model = ScriptedModel([[refined(BROKEN), refined(FULL_FIX), refined(HALF_FIX), "[Refined]\ndef grade(:"]])
    final = run_graph(task(tmp_path), model_config(samples=4), model)
    assert final["status"] == "fixed" and final["iteration"] == 1
    assert Attempt(**final["best"]).origin == "model sample 1"
    assert final["executions"] == 1 + 3
    patch_entry = next(h for h in final["history"] if h["node"] == "patch")
    assert patch_entry["rejected"] and "does not parse" in patch_entry["rejected"][0]


def test_token_budget_stops_the_run(tmp_path, run_graph):
    model = ScriptedModel([], tokens_per_call=1000)
    final = run_graph(task(tmp_path), model_config(max_tokens=1500, max_iterations=50), model)
    assert final["status"] == "not_fixed" and "token budget" in final["stop_reason"]
    assert len(model.prompts) == 2 and final["tokens_used"] == 2000


def test_semcoder_prompt_is_the_papers_with_no_history(tmp_path, run_graph):
    model = ScriptedModel([[refined(HALF_FIX)], [refined(FULL_FIX)]])
    final = run_graph(task(tmp_path), model_config(samples=1), model)
    assert final["status"] == "fixed"
    first, second = model.prompts
    assert first.startswith("Debug and Refine the Code: You are given a a problem")
    assert "### Failed Test\n```python\nretv = grade(90)\nassert retv == 'A'\n\n```\n" in first
    assert f"### Buggy Solution\n```python\n{BUGGY}\n```" in first
    assert "retv = grade(80)\nassert retv == 'B'" in second and HALF_FIX in second
    assert "Root Cause Analysis" not in second  # no history: the earlier answer is not shown


def test_trace_and_blocks_feedback_show_the_real_execution(tmp_path, run_graph):
    for mode, marker in (("trace", '# [INPUT] {"score": 90} [/INPUT]'), ("blocks", "[BLOCK-0]")):
        model = ScriptedModel([[refined(FULL_FIX)]])
        final = run_graph(task(tmp_path), model_config(samples=1, feedback=mode), model)
        assert final["status"] == "fixed"
        assert marker in model.prompts[0], model.prompts[0]


def test_generate_writes_missing_code(tmp_path, run_graph):
    write(tmp_path, {"grades.py": "", "test_grades.py": TESTS})
    blank = function_task(tmp_path / "grades.py", tmp_path / "test_grades.py").model_copy(
        update={"problem": "Letter grade: A from 90, B from 80, else C."})
    model = ScriptedModel([[f"```python\n{HALF_FIX}```"], [refined(FULL_FIX)]])
    final = run_graph(blank, model_config(samples=1), model)
    assert final["status"] == "fixed"
    assert model.prompts[0].startswith("You are an exceptionally intelligent coding assistant")
    assert [h["node"] for h in final["history"]][:2] == ["generate", "execute"]
