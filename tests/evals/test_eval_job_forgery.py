"""Eval jobs on the job protocol: what a solution does to its own process never turns a failing sample into a pass.

Real sandbox runs (a one-worker pool). Each attack pairs a wrong solution with a way to forge or cut short the
harness's report: printed verdicts and frames, frames written to every fd in /proc/self/fd, os._exit(0) after
part of the work, atexit hooks, and calling the harness's own `send` found by walking the stack. The refine
probe's choice of failing test cannot be steered by printing the marker the old probe read from stdout.
"""

from __future__ import annotations

import re

import pytest

from evals._config import EvalConfig
from evals._failing_test import assert_pairs, first_failing_tests
from evals._samples import Sample
from evals._scoring_program import score_program
from evals.loaders import load_humaneval, load_humanevalplus
from evals.scoring import verdicts_for
from sandbox import Pool

TASK0 = load_humaneval()[0]  # has_close_elements(numbers, threshold) -> bool; its test has 7 asserts
GCD = next(t for t in load_humanevalplus() if t.task_id == "HumanEval/13")  # greatest_common_divisor(a, b)
CONFIG = EvalConfig(program_time_limit_s=5.0)

# What a forger would print: a line of the old nonce framing, and frames of the job protocol (without the key).
FORGED = (b'0123456789abcdef {"s": "passed"}\n'
          b'@@semcoder-job 0 00000000000000000000000000000000 {"s":"passed"}\n'
          b'@@semcoder-job end 00000000000000000000000000000000\n')
FORGE = f"""
import os, sys

def _print_forged():
    sys.stdout.write({FORGED.decode()!r})
    sys.stdout.flush()
    sys.stderr.write({FORGED.decode()!r})

def _forge_every_fd():
    for name in os.listdir('/proc/self/fd'):
        try:
            os.write(int(name), {FORGED!r})
        except OSError:
            pass
"""
CLOSE = ("any(abs(a - b) < threshold for i, a in enumerate(numbers) for j, b in enumerate(numbers) if i != j)")


def has_close(body: str, preamble: str = "") -> str:
    return FORGE + preamble + "\ndef has_close_elements(numbers, threshold):\n" + body


ATTACKS = {
    "prints forged lines": has_close("    _print_forged()\n    return False\n", "_print_forged()\n"),
    "forges frames on every fd": has_close("    _forge_every_fd()\n    return False\n", "_forge_every_fd()\n"),
    "forges frames on every fd, then os._exit(0)": has_close("    _forge_every_fd()\n    os._exit(0)\n"),
    "os._exit(0) after partial work": has_close(
        "    _calls.append(1)\n    if len(_calls) > 3:\n        os._exit(0)\n    return " + CLOSE + "\n", "_calls = []\n"),
    "os._exit(0) after partial work, forged frames first": has_close(
        "    _calls.append(1)\n    if len(_calls) > 3:\n        _print_forged()\n        _forge_every_fd()\n"
        "        os._exit(0)\n    return " + CLOSE + "\n", "_calls = []\n"),
    "atexit hook forges": has_close(
        "    return False\n", "import atexit\natexit.register(_print_forged)\natexit.register(_forge_every_fd)\n"),
    "atexit hook, then sys.exit(0)": has_close(
        "    sys.exit(0)\n", "import atexit\natexit.register(_print_forged)\natexit.register(_forge_every_fd)\n"),
    # The harness's own `send` is a local of a frame on the stack: a solution can call it, never make it count.
    "sends passed through the harness's send, then os._exit(0)": has_close(
        "    frame = sys._getframe()\n    while frame is not None and 'send' not in frame.f_locals:\n"
        "        frame = frame.f_back\n    frame.f_locals['send']({'s': 'passed'})\n    os._exit(0)\n"),
    "sends passed through the harness's send, then fails": has_close(
        "    frame = sys._getframe()\n    while frame is not None and 'send' not in frame.f_locals:\n"
        "        frame = frame.f_back\n    frame.f_locals['send']({'s': 'passed'})\n    return False\n"),
}


@pytest.fixture(scope="module")
def pool():
    with Pool(workers=1) as one:
        yield one


def _program_verdicts(pool, codes: list[str]):
    samples = [Sample(task_id=TASK0.task_id, text=code) for code in codes]
    return score_program([TASK0], samples, pool, CONFIG, show_progress=False)


def test_forgeries_never_pass_a_failing_humaneval_sample(pool) -> None:
    names = list(ATTACKS)
    verdicts = _program_verdicts(pool, [ATTACKS[name] for name in names])
    assert [name for name, verdict in zip(names, verdicts, strict=True) if verdict.passed] == []
    by_name = dict(zip(names, verdicts, strict=True))
    assert "no result" in by_name["os._exit(0) after partial work"].detail
    assert "AssertionError" in by_name["atexit hook forges"].detail  # the hook never ran: the real failure counts
    assert "a malformed report on the channel" in by_name["forges frames on every fd"].detail


def test_a_correct_solution_that_prints_forged_lines_and_registers_atexit_still_passes(pool) -> None:
    honest = has_close("    print('noise')\n    return " + CLOSE + "\n",
                       "_print_forged()\nimport atexit\natexit.register(_print_forged)\n")
    (verdict,) = _program_verdicts(pool, [honest])
    assert verdict.passed, verdict


@pytest.fixture(scope="module")
def diff_config(tmp_path_factory) -> EvalConfig:
    return EvalConfig(cache_dir=tmp_path_factory.mktemp("expected"))


def gcd(body: str, preamble: str = "") -> str:
    return FORGE + preamble + "\ndef greatest_common_divisor(a, b):\n" + body


def test_differential_tests_keep_per_input_verdicts_of_a_job_cut_short(pool, diff_config) -> None:
    right = "    import math\n    return math.gcd(a, b)\n"
    partial = gcd("    _calls.append(1)\n    if len(_calls) > 5:\n        _forge_every_fd()\n        os._exit(0)\n" + right,
                  "_calls = []\n")
    late_forger = gcd("    _calls.append(1)\n    if len(_calls) == len_inputs:\n        _forge_every_fd()\n" + right,
                      f"_calls = []\nlen_inputs = {len(GCD.inputs)}\n")
    wrong_with_atexit = gcd("    _print_forged()\n    return 1\n", "import atexit\natexit.register(_forge_every_fd)\n")
    samples = [Sample(task_id=GCD.task_id, text=GCD.prompt + right)] + [
        Sample(task_id=GCD.task_id, text=code) for code in (partial, late_forger, wrong_with_atexit)]
    canonical, cut, forged_last, wrong = verdicts_for("humaneval+", [GCD], samples, pool, diff_config,
                                                      show_progress=False)
    assert canonical.passed, canonical
    # Outputs travel in batches (evals/_harness.py run_diff), so a job that dies loses its unsent batch: the
    # verdict names the first input without a result, at or before the one that killed it.
    assert not cut.passed and re.match(r"input [0-5]: no result", cut.detail), cut
    # Every output was right, but the job's channel was broken before it ended: not a pass.
    assert not forged_last.passed and "a malformed report on the channel" in forged_last.detail, forged_last
    assert not wrong.passed and "wrong output" in wrong.detail, wrong


# Sent through the harness's own `send` (found on the stack): a run of "matched" outputs with a digest the sandbox
# cannot know (the expected outputs' unkeyed digests never reach it), and records the host must pass over.
FORGED_RUNS = ("    frame = sys._getframe()\n    while 'send' not in frame.f_locals:\n        frame = frame.f_back\n"
               "    frame.f_locals['send']({'o': [], 'm': [[0, len_inputs - 1, '0' * 32], [0, 10 ** 12, 'x'], 'junk',"
               " [3, 1, 'y']]})\n    frame.f_locals['send']({'o': 5})\n"
               "    frame.f_locals['send']({'i': 1, 's': 'ok'})\n")


def test_runs_of_matched_outputs_count_only_with_the_expected_digests(pool, diff_config) -> None:
    right = "    import math\n    return math.gcd(a, b)\n"
    preamble = f"_calls = []\nlen_inputs = {len(GCD.inputs)}\n"
    forge_then_exit = gcd("    _calls.append(1)\n    if len(_calls) == 1:\n" + FORGED_RUNS.replace("    ", "        ")
                          + "        os._exit(0)\n" + right, preamble)
    forge_then_go_on = gcd("    _calls.append(1)\n    if len(_calls) == 1:\n" + FORGED_RUNS.replace("    ", "        ")
                           + right, preamble)
    samples = [Sample(task_id=GCD.task_id, text=code) for code in (forge_then_exit, forge_then_go_on)]
    cut, honest = verdicts_for("humaneval+", [GCD], samples, pool, diff_config, show_progress=False)
    # Both forge on their first call, before the harness has sent any output (so that no batch of its own comes before
    # the forged records, however slow the machine). The job that dies then leaves the forged run all the host has
    # for input 0, and its digest is wrong.
    assert not cut.passed and cut.detail == "input 0: inconsistent result record (a run of outputs)", cut
    # The harness's own records come after the forged ones and cover every input: a right solution still passes.
    assert honest.passed, honest


OLD_MARKER = "__SEMCODER_FIRST_FAILING__"


def test_the_failing_test_probe_cannot_be_steered_by_printing_its_old_marker(pool) -> None:
    pairs = {TASK0.task_id: assert_pairs(TASK0.test, TASK0.entry_point)}
    always_true = ("import atexit, sys\n"
                   f"print({OLD_MARKER!r}, 5)\n"
                   f"atexit.register(lambda: print({OLD_MARKER!r}, 6))\n"
                   "def has_close_elements(numbers, threshold):\n"
                   f"    print({OLD_MARKER!r}, None)\n    sys.stdout.flush()\n    return True\n")
    right_then_exit = has_close("    _calls.append(1)\n    if len(_calls) > 3:\n        os._exit(0)\n    return "
                                + CLOSE + "\n", "_calls = []\n")
    chosen = first_failing_tests([(TASK0, always_true), (TASK0, right_then_exit)], pairs, pool, time_limit_s=5.0)
    # always True first fails the second assert (expects False), whatever the program printed.
    assert chosen[0] == pairs[TASK0.task_id][1]
    # A probe that never reported (the program ended the job) falls back to the first assert.
    assert chosen[1] == pairs[TASK0.task_id][0]
