"""HumanEval+ / MBPP+ differential scoring in the sandbox: parity with EvalPlus's verdicts and cheats."""

from __future__ import annotations

import pytest

from evals._config import EvalConfig
from evals._samples import Sample
from evals.loaders import load_humanevalplus, load_mbppplus
from evals.scoring import score_samples, verdicts_for

HUMANEVALPLUS = {t.task_id: t for t in load_humanevalplus()}


class CountingRunner:
    """The real pool, counting submissions (to see which work the cache saved)."""

    def __init__(self, pool) -> None:
        self.pool, self.submitted = pool, 0

    def submit_job(self, job, *, urgent=False):
        self.submitted += 1
        return self.pool.submit_job(job, urgent=urgent)


def _canonical(tasks):
    return [Sample(task_id=t.task_id, text=t.program(t.canonical_solution)) for t in tasks]


@pytest.mark.slow
def test_humanevalplus_canonical_solutions_pass_all_inputs(runner, cache_dir) -> None:
    tasks = list(HUMANEVALPLUS.values())
    report = score_samples("humaneval+", tasks, _canonical(tasks), runner, EvalConfig(cache_dir=cache_dir),
                           show_progress=False)
    assert [t for t, s in report.per_task.items() if s.passed != 1] == []
    assert report.n_tasks == 164 and report.pass_at_1 == 1.0


@pytest.mark.slow
def test_mbppplus_canonical_solutions_pass_all_inputs(runner, cache_dir) -> None:
    tasks = load_mbppplus()
    report = score_samples("mbpp+", tasks, _canonical(tasks), runner, EvalConfig(cache_dir=cache_dir),
                           show_progress=False)
    assert [t for t, s in report.per_task.items() if s.passed != 1] == []
    assert report.n_tasks == 378


def _verdicts(runner, cache_dir, task_id: str, codes: list[str]):
    task = HUMANEVALPLUS[task_id]
    samples = [Sample(task_id=task_id, text=task.prompt + code) for code in codes]
    return verdicts_for("humaneval+", [task], samples, runner, EvalConfig(cache_dir=cache_dir), show_progress=False)


GCD = "HumanEval/13"  # greatest_common_divisor(a, b) -> int
CHEATS = [
    "    class Yes:\n        def __eq__(self, other):\n            return True\n    return Yes()\n",
    "    class Int(int):\n        def __eq__(self, other):\n            return True\n"
    "        __hash__ = int.__hash__\n    return Int(1)\n",
    "    import os\n    os.write(1, b'ok')\n    os._exit(0)\n",
    "    import math\n    return math.gcd(a, b) + (a > 1000)\n",  # right on small inputs only
    "    import time\n    end = time.process_time() + 1.5\n    while time.process_time() < end:\n        pass\n"
    "    import math\n    return math.gcd(a, b)\n",  # too slow
    "    import time\n    time.sleep(3.5)\n    import math\n    return math.gcd(a, b)\n",  # blocks: wall backstop
    "    raise SystemExit(0)\n",
]


def test_cheats_and_wrong_solutions_fail(runner, cache_dir) -> None:
    verdicts = _verdicts(runner, cache_dir, GCD, CHEATS)
    assert [v.passed for v in verdicts] == [False] * len(CHEATS), verdicts


def test_equal_values_of_another_type_pass_as_in_evalplus(runner, cache_dir) -> None:
    # EvalPlus compares with ==, so 6.0 == 6 passes; the harness stops at the first encoding mismatch,
    # and the host, seeing equal values, reruns the sample without stopping.
    good, wrong = _verdicts(runner, cache_dir, GCD, ["    import math\n    return float(math.gcd(a, b))\n",
                                                     "    import math\n    return str(math.gcd(a, b))\n"])
    assert good.passed, good
    assert not wrong.passed and "input 0" in wrong.detail


def test_float_outputs_get_evalplus_tolerance(runner, cache_dir) -> None:
    body = ("    mean = sum(numbers) / len(numbers)\n"
            "    return sum(abs(x - mean) for x in numbers) / len(numbers) + {}\n")
    close, far = _verdicts(runner, cache_dir, "HumanEval/4", [body.format("1e-9"), body.format("1e-3")])
    assert close.passed, close
    assert not far.passed


def test_find_zero_uses_evalplus_special_oracle(runner, cache_dir) -> None:
    # Three more Newton steps: most roots differ from the canonical ones in the last digits, and
    # |poly(root)| <= atol still holds, which is all EvalPlus checks for find_zero.
    task = HUMANEVALPLUS["HumanEval/32"]
    refined = task.canonical_solution.replace(
        "    return x\n", "    for _ in range(3):\n        if derivative(x) != 0: x = x - func(x) / derivative(x)\n    return x\n")
    assert refined != task.canonical_solution
    refined_wrong = refined.replace("    return x\n", "    return x + 0.5\n")
    good, wrong = _verdicts(runner, cache_dir, "HumanEval/32", [refined, refined_wrong])
    assert good.passed, good
    assert not wrong.passed


def test_expected_outputs_are_cached_and_a_corrupt_cache_is_recomputed(runner, tmp_path) -> None:
    task = HUMANEVALPLUS["HumanEval/0"]
    counting = CountingRunner(runner)
    config = EvalConfig(cache_dir=tmp_path)
    samples = _canonical([task])
    assert verdicts_for("humaneval+", [task], samples, counting, config, show_progress=False)[0].passed
    assert counting.submitted == 2  # expected outputs, then the sample
    (cache_file,) = tmp_path.iterdir()
    verdicts_for("humaneval+", [task], samples, counting, config, show_progress=False)
    assert counting.submitted == 3
    cache_file.write_bytes(b"not JSON")
    assert verdicts_for("humaneval+", [task], samples, counting, config, show_progress=False)[0].passed
    assert counting.submitted == 5
    for content in (b"[1, 2]", b'{"HumanEval/0": 3}'):  # JSON, but not what the cache holds
        cache_file.write_bytes(content)
        assert verdicts_for("humaneval+", [task], samples, counting, config, show_progress=False)[0].passed
    assert counting.submitted == 9


def test_a_cache_for_another_harness_goes_when_this_one_writes_its_own(runner, tmp_path) -> None:
    """A harness edit changes every cache key: the files of the harness before can never be read again."""
    task = HUMANEVALPLUS["HumanEval/0"]
    stale = [tmp_path / "expected-humaneval-000000000000-0123.json", tmp_path / "expected-humaneval-0123.json.gz"]
    kept = [tmp_path / "expected-mbpp-000000000000-0123.json", tmp_path / "expected-humaneval-x.json.tmp"]
    for path in stale + kept:
        path.write_text("{}")
    verdicts_for("humaneval+", [task], _canonical([task]), runner, EvalConfig(cache_dir=tmp_path), show_progress=False)
    (written,) = set(tmp_path.iterdir()) - set(kept)
    assert written.name.startswith("expected-humaneval-") and written.suffix == ".json"
