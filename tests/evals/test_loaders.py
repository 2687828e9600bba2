"""Loaders read the shipped copies, local files and (with a reachable hub) hub datasets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from evals.loaders import (
    BENCHMARKS,
    DatasetError,
    load_benchmark,
    load_humanevalfix,
    load_humanevalplus,
    load_mbpp,
    load_mbppplus,
)


@pytest.mark.parametrize(("bench", "count"), [("humaneval", 164), ("humaneval+", 164), ("mbpp", 500),
                                                  ("mbpp+", 378), ("cruxeval-i", 800), ("cruxeval-o", 800),
                                                  ("humanevalfix", 164)])
def test_shipped_copies_hold_the_published_counts(bench: str, count: int) -> None:
    tasks = load_benchmark(bench)
    assert len(tasks) == count
    assert len({task.task_id for task in tasks}) == count


def test_plus_input_counts_match_the_release() -> None:
    he = load_humanevalplus()
    mbpp = load_mbppplus()
    assert (sum(len(t.base_inputs) for t in he), sum(len(t.plus_inputs) for t in he)) == (1570, 122683)
    assert (sum(len(t.base_inputs) for t in mbpp), sum(len(t.plus_inputs) for t in mbpp)) == (1174, 39841)


def test_mbpp_is_the_test_split_with_entry_points() -> None:
    tasks = load_mbpp()
    assert [int(t.task_id) for t in tasks] == list(range(11, 511))
    assert tasks[0].entry_point == "remove_Occ" and tasks[0].test.count("assert") == 3


def test_mbppplus_inputs_get_their_types_back() -> None:
    tasks = {t.task_id: t for t in load_mbppplus()}
    assert all(type(arg) is tuple for arg in tasks["Mbpp/2"].base_inputs[0])
    assert type(tasks["Mbpp/252"].base_inputs[0][0]) is complex


def test_humanevalfix_has_buggy_and_canonical_solutions() -> None:
    task = load_humanevalfix()[0]
    assert task.task_id == "Python/0" and task.buggy_solution != task.canonical_solution
    assert task.test.rstrip().endswith("check(has_close_elements)")


def test_local_file_source(tmp_path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"id": "sample_0", "code": "def f(x):\n    return x", "input": "1", "output": "1"}))
    (task,) = load_benchmark("cruxeval-o", str(path))
    assert task.task_id == "sample_0"


def test_missing_fields_are_named(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"task_id": "HumanEval/0", "prompt": "", "entry_point": "f"}) + "\n")
    with pytest.raises(DatasetError, match="canonical_solution"):
        load_benchmark("humaneval+", path)


def test_unknown_benchmark_lists_the_choices() -> None:
    with pytest.raises(DatasetError, match="humaneval\\+"):
        load_benchmark("apps")
    assert "humanevalfix" in BENCHMARKS


def test_hub_name_is_tried_and_fails_clearly_offline() -> None:
    # A separate interpreter: `datasets` reads HF_HUB_OFFLINE when it is imported.
    code = (
        "from evals.loaders import load_benchmark, DatasetError\n"
        "try:\n    load_benchmark('humaneval', 'openai_humaneval')\n"
        "except DatasetError as exc:\n    print('ERR', exc)\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.startswith("ERR could not load 'openai_humaneval'"), out.stdout + out.stderr
    assert "--data PATH" in out.stdout
