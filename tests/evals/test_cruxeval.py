"""CRUXEval scoring reproduces the official harness on its shipped CodeLlama-7B generations."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from evals._config import EvalConfig
from evals._report import build_report
from evals._samples import Sample, read_crux_samples
from evals.cruxeval import legacy_official_counts
from evals.loaders import CruxTask, load_cruxeval
from evals.passk import mean_pass_at_k
from evals.scoring import verdicts_for

DATA = Path(__file__).resolve().parent / "data"

TASKS = load_cruxeval()


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "pass1", "pass5"), [("input", 35.95, 44.99), ("output", 34.21, 40.29)])
def test_reference_generations_get_the_official_verdicts(runner, mode: str, pass1: float, pass5: float) -> None:
    generations = DATA / f"codellama-7b_temp0.2_{mode}.generations.json.gz"
    with gzip.open(DATA / f"codellama-7b_temp0.2_{mode}.scored.json.gz", "rt") as handle:
        official = json.load(handle)
    samples = read_crux_samples(generations, {t.task_id for t in TASKS})
    benchmark = "cruxeval-i" if mode == "input" else "cruxeval-o"
    verdicts = verdicts_for(benchmark, TASKS, samples, runner, EvalConfig(), show_progress=False)
    official_flat = [ok for task_id in dict.fromkeys(s.task_id for s in samples)
                     for ok in official["raw_scored_generations"][task_id]]
    differing = [(s.task_id, s.text, v.detail) for s, v, ok in zip(samples, verdicts, official_flat, strict=True)
                 if v.passed != ok]
    assert differing == []
    report = build_report(benchmark, [t.task_id for t in TASKS], verdicts)
    assert round(100 * report.pass_at_1, 2) == pass1 == round(official["pass_at_1"], 2)
    assert round(100 * report.pass_at_5, 2) == pass5 == round(official["pass_at_5"], 2)


IDENTITY = CruxTask(task_id="sample_0", code="def f(x):\n    return x\n", input="1", output="1")


def _score(runner, mode: str, generations: list[str]):
    samples = [Sample(task_id="sample_0", text=g) for g in generations]
    return verdicts_for(mode, [IDENTITY], samples, runner, EvalConfig(crux_time_limit_s=1.0), show_progress=False)


def test_generations_that_fool_the_official_assert_fail(runner) -> None:
    always_equal = "f(type('Yes', (), {'__eq__': lambda self, other: True, '__hash__': None})())"
    verdicts = _score(runner, "cruxeval-i", ["f(1)", always_equal, "f(2) or True", "f(1) if 0 else 2"])
    assert [v.passed for v in verdicts] == [True, False, False, False], verdicts


def test_output_mode_compares_values_and_times_out(runner) -> None:
    verdicts = _score(runner, "cruxeval-o", ["1", "1.0", "2", "[1][0]", "f(1)", "exec('while True: pass')"])
    assert [v.passed for v in verdicts] == [True, True, False, True, False, False], verdicts
    assert verdicts[4].detail == "filtered"
    assert verdicts[5].detail == "timeout"


def test_filtered_generations_count_in_n_unlike_the_legacy_scorer(runner) -> None:
    verdicts = _score(runner, "cruxeval-i", ["f(1)", "1", "x"])
    ours = build_report("cruxeval-i", ["sample_0"], verdicts).per_task["sample_0"]
    assert (ours.n, ours.passed) == (3, 1)
    assert legacy_official_counts(verdicts) == {"sample_0": (1, 1)}  # pass@1 would be 1.0, not 1/3
    assert mean_pass_at_k(legacy_official_counts(_score(runner, "cruxeval-i", ["1", "2"])).values(), 1) == 0.0
