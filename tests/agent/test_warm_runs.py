"""TestRunner's warm runs: after a run of the original files, candidates run in a sandbox that imported the
environment's modules ahead (sandbox.job.Preload), and every report is the one a cold run gives."""

from __future__ import annotations

from pathlib import Path

import sandbox
from agent.tasks import TestReport, TestRunner, parse_report, project_task

PRICES = '''"""Prices: the code under repair."""
import decimal
import fractions
import json


def total(items):
    return sum(decimal.Decimal(str(price)) for price in items)


def ratio(a, b):
    return fractions.Fraction(a, b)


def dump(items):
    return json.dumps(sorted(items))


def discount(price, percent):
    return price - price * percent / 10  # the bug: percent is out of 100
'''

TESTS = '''import statistics
import textwrap

import pytest

from shop.prices import discount, dump, ratio, total


def test_total():
    assert total([1.10, 2.20]) == total([3.30])


def test_ratio():
    assert ratio(2, 4) == ratio(1, 2)


def test_dump():
    assert dump([3, 1]) == "[1, 3]"


@pytest.mark.parametrize("price", [100, 50])
def test_discount(price):
    assert discount(price, 10) == price * 0.9


def test_stats():
    assert statistics.mean([1, 2, 3]) == 2 and textwrap.dedent("  x") == "x"
'''


def _project(tmp_path: Path) -> Path:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "prices.py").write_text(PRICES)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_prices.py").write_text(TESTS)
    return tmp_path


def _same(warm: TestReport, cold: TestReport) -> None:
    assert not warm.problem and not cold.problem, (warm.problem, cold.problem)
    assert [(o.id, o.outcome, o.message, o.test_line, o.error_type) for o in warm.outcomes] == \
           [(o.id, o.outcome, o.message, o.test_line, o.error_type) for o in cold.outcomes]
    assert warm.coverage == cold.coverage
    assert warm.tampered == cold.tampered == []


def test_candidates_run_warm_and_report_exactly_what_a_cold_run_reports(tmp_path: Path) -> None:
    task = project_task(_project(tmp_path)).model_copy(update={"test_paths": ["tests/test_prices.py"]})
    original = task.files["shop/prices.py"]
    candidates = [
        {**task.files, "shop/prices.py": original.replace("/ 10", "/ 100")},  # the fix
        {**task.files, "shop/prices.py": original + "\n# a comment\n"},  # not a fix
        {**task.files, "shop/prices.py": original.replace("/ 10", "/ 100").replace("sorted(items)", "items")},
    ]
    with sandbox.Pool(workers=1) as pool:
        runner = TestRunner(pool, test_timeout_s=30)
        baseline = runner._submit(task, task.files).result()
        learnt = runner._imports[runner._digest(task)]
        assert "decimal" in learnt["modules"] and "statistics" in learnt["modules"]
        assert "shop.prices" not in learnt["modules"] and "shop/prices.py" in learnt["compile"]
        assert not any(name.startswith(("shop", "tests")) for name in learnt["modules"])
        warm, rewritten_ahead, kinds = [], [], []
        for files in candidates * 2:  # the first with a preload runs cold and prepares the next ones
            result = runner._submit(task, files).result()
            warm.append((result.records[0]["preloaded"], parse_report(result, set(task.editable))))
            rewritten_ahead.append(result.records[0]["rewritten_ahead"])
            kinds.append(result.execution.warm.split(":")[0])
        cold = [parse_report(runner._submit(task, files, warm=False).result(), set(task.editable))
                for files in candidates * 2]
    assert baseline.records[0]["preloaded"] == 0
    assert all(preloaded > 0 for preloaded, _ in warm[1:]), [preloaded for preloaded, _ in warm]
    # after the first, each candidate's run was started ahead, on the previous candidate's files (its collection
    # done before the candidate came), and took the candidate's changed function bodies over
    assert kinds == [""] + ["prestarted"] * 5, kinds
    # the test file's asserts were rewritten ahead (pytest >= 5 here), and the messages below are still the same.
    # Not every time: on a loaded machine a job may take a child whose preparation has not finished, and then
    # pytest rewrites as usual (seen once in a full CI-like run); the reports must be the same either way.
    assert rewritten_ahead[0] is False and any(rewritten_ahead[1:]), rewritten_ahead
    for (_, report), cold_report in zip(warm, cold, strict=True):
        _same(report, cold_report)
    fixed, unfixed, broken = (report for _, report in warm[3:])
    assert not fixed.failing and len(unfixed.failing) == 2 and [o.id for o in broken.failing] == [
        "tests/test_prices.py::test_dump"]


def test_a_workspace_with_other_paths_runs_cold(tmp_path: Path) -> None:
    """A new file could shadow a module imported ahead: such a workspace gets no preload."""
    task = project_task(_project(tmp_path)).model_copy(update={"test_paths": ["tests/test_prices.py"]})
    with sandbox.Pool(workers=1) as pool:
        runner = TestRunner(pool, test_timeout_s=30)
        runner._submit(task, task.files).result()
        digest = runner._digest(task)
        assert runner._preload(digest, task, dict(task.files)) is not None
        assert runner._preload(digest, task, {**task.files, "statistics.py": "mean = None\n"}) is None
        shadowing = {**task.files, "statistics.py": "def mean(values):\n    return 2\n"}
        for _ in range(2):
            result = runner._submit(task, shadowing).result()
            assert result.records[0]["preloaded"] == 0
