"""HumanEval / MBPP / HumanEvalFix scoring in the sandbox: parity and attempts to game the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals._config import EvalConfig
from evals._samples import Sample
from evals._scoring_program import score_program
from evals.loaders import load_humaneval, load_humanevalfix, load_mbpp
from evals.scoring import score_file

DATA = Path(__file__).resolve().parent / "data"

FAST = EvalConfig(program_time_limit_s=3.0)
# Reference solutions must pass even on a loaded 2-core machine (MBPP 123 takes 3 s alone, 10 s under load).
SLOW_OK = EvalConfig(program_time_limit_s=60.0)


def test_human_eval_example_samples_give_half(runner) -> None:
    report = score_file("humaneval", DATA / "example_samples.jsonl", data=str(DATA / "example_problem.jsonl"),
                        runner=runner, config=FAST, show_progress=False)
    assert report.pass_at_1 == 0.5
    assert report.per_task["test/0"].model_dump() == {"passed": 3, "n": 6}


def _canonical(tasks, attribute="canonical_solution"):
    return [Sample(task_id=t.task_id, text=t.program(getattr(t, attribute))) for t in tasks]


@pytest.mark.slow
def test_humaneval_canonical_solutions_all_pass(runner) -> None:
    tasks = load_humaneval()
    verdicts = score_program(tasks, _canonical(tasks), runner, SLOW_OK, show_progress=False)
    assert [v.task_id for v in verdicts if not v.passed] == []


@pytest.mark.slow
def test_humanevalfix_buggy_fail_and_canonical_pass(runner) -> None:
    tasks = load_humanevalfix()
    canonical = score_program(tasks, _canonical(tasks), runner, SLOW_OK, show_progress=False)
    buggy = score_program(tasks, _canonical(tasks, "buggy_solution"), runner, FAST, show_progress=False)
    assert [v.task_id for v in canonical if not v.passed] == []
    assert [v.task_id for v in buggy if v.passed] == []


@pytest.mark.slow
def test_mbpp_reference_code_passes(runner) -> None:
    tasks = load_mbpp()
    verdicts = score_program(tasks, _canonical(tasks), runner, SLOW_OK, show_progress=False)
    assert [(v.task_id, v.detail) for v in verdicts if not v.passed] == []


TASK0 = load_humaneval()[0]  # has_close_elements(numbers, threshold) -> bool
CHEATS = {
    "always-true __eq__": "class Yes:\n    def __eq__(self, other):\n        return True\n"
                          "def has_close_elements(numbers, threshold):\n    return Yes()\n",
    "bool subclass": "class B(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
                     "def has_close_elements(numbers, threshold):\n    return B(1)\n",
    "exit 0 before tests": "import os\nos._exit(0)\n",
    "sys.exit inside": "import sys\ndef has_close_elements(numbers, threshold):\n    sys.exit(0)\n",
    "raises SystemExit": "def has_close_elements(numbers, threshold):\n    raise SystemExit\n",
    "infinite loop": "def has_close_elements(numbers, threshold):\n    while True:\n        pass\n",
    "loop that swallows the timeout": "def has_close_elements(numbers, threshold):\n    while True:\n"
                                      "        try:\n            while True: pass\n        except BaseException:\n"
                                      "            pass\n",
    "wrong answer": "def has_close_elements(numbers, threshold):\n    return True\n",
}


def _fake_verdicts() -> str:
    # Tries to print something that looks like a passing harness line on every fd it can reach.
    line = json.dumps({"s": "passed"})
    return ("import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'x " + line + "\\n')\n"
            "    except OSError:\n        pass\nprint('" + line + "')\nos._exit(0)\n")


@pytest.mark.parametrize("name", [*CHEATS, "fake verdict lines"])
def test_cheats_and_wrong_code_fail(runner, name: str) -> None:
    code = CHEATS.get(name) or _fake_verdicts()
    (verdict,) = score_program([TASK0], [Sample(task_id=TASK0.task_id, text=code)], runner, FAST,
                               show_progress=False)
    assert not verdict.passed, verdict


def test_printing_solutions_still_pass(runner) -> None:
    code = TASK0.program(TASK0.canonical_solution).replace("    for idx", "    print('noise' * 1000)\n    for idx", 1)
    (verdict,) = score_program([TASK0], [Sample(task_id=TASK0.task_id, text=code)], runner, FAST,
                               show_progress=False)
    assert verdict.passed, verdict


def test_samples_path_errors_are_clear(tmp_path: Path, runner) -> None:
    from evals._samples import SamplesError

    bad = tmp_path / "s.jsonl"
    bad.write_text(json.dumps({"task_id": "HumanEval/999", "completion": ""}) + "\n")
    with pytest.raises(SamplesError, match="HumanEval/999"):
        score_file("humaneval", bad, runner=runner, show_progress=False)
    bad.write_text(json.dumps({"task_id": "HumanEval/0", "completion": ""}) + "\n")
    with pytest.raises(SamplesError, match="--partial"):
        score_file("humaneval", bad, runner=runner, show_progress=False)
