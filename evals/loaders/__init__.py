"""Benchmark loaders: HumanEval, HumanEval+, MBPP, MBPP+, CRUXEval and HumanEvalFix.

Each loader takes `source`: None for the copy shipped in `evals/data/` (see its README for
provenance and licenses), a local file path, or a Hugging Face Hub dataset name (needs
`datasets` and a reachable hub). This is the only part of `evals` that `training` may import.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from evals.loaders._files import DATA_DIR, DatasetError, read_jsonl
from evals.loaders._hub import load_hub_rows, looks_like_hub_name
from evals.loaders._mbppplus_inputs import deserialize_inputs
from evals.loaders._models import CruxTask, DiffTask, ProgramTask, Task

__all__ = [
    "BENCHMARKS",
    "CruxTask",
    "DatasetError",
    "DiffTask",
    "ProgramTask",
    "Task",
    "load_benchmark",
    "load_cruxeval",
    "load_humaneval",
    "load_humanevalfix",
    "load_humanevalplus",
    "load_mbpp",
    "load_mbppplus",
]

Source = str | Path | None
MBPP_TEST_IDS = range(11, 511)


def _rows(source: Source, shipped: str, hub: tuple[str, str | None, str]) -> Iterable[dict[str, Any]]:
    if source is None:
        return read_jsonl(DATA_DIR / shipped)
    if isinstance(source, str) and looks_like_hub_name(source):
        name, config, split = hub
        return load_hub_rows(source, config=config if source == name else None, split=split)
    return read_jsonl(Path(source))


def _require(row: dict[str, Any], fields: tuple[str, ...], what: str) -> None:
    missing = [f for f in fields if f not in row]
    if missing:
        raise DatasetError(f"{what} record {row.get('task_id', '?')!r} lacks fields {missing}")


def load_humaneval(source: Source = None) -> list[ProgramTask]:
    """HumanEval: the program is `prompt + completion + test + check(entry_point)`."""
    tasks = []
    for row in _rows(source, "HumanEval.jsonl.gz", ("openai_humaneval", None, "test")):
        _require(row, ("task_id", "prompt", "entry_point", "canonical_solution", "test"), "HumanEval")
        test = f"{row['test']}\n\ncheck({row['entry_point']})\n"
        tasks.append(ProgramTask(**{**row, "test": test}))
    return tasks


def load_humanevalfix(source: Source = None) -> list[ProgramTask]:
    """HumanEvalFix (HumanEvalPack, Python): `test` already ends with `check(entry_point)`."""
    tasks = []
    for row in _rows(source, "humanevalpack-python.jsonl.gz", ("bigcode/humanevalpack", "python", "test")):
        _require(row, ("task_id", "prompt", "entry_point", "canonical_solution", "buggy_solution", "test"),
                 "HumanEvalFix")
        tasks.append(ProgramTask(**{k: row[k] for k in ProgramTask.model_fields if k in row and k != "description"},
                                 description=row.get("instruction", "")))
    return tasks


def mbpp_entry_point(code: str, tests: list[str]) -> str:
    """The function (or class) that `code` defines and the tests call."""
    defined = {n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    for test in tests:
        for node in ast.walk(ast.parse(test)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defined:
                return node.func.id
    raise DatasetError(f"no function defined by the reference code is called in the tests: {tests[:1]}")


def load_mbpp(source: Source = None) -> list[ProgramTask]:
    """MBPP's test split (task_ids 11-510): the program is `completion + test_setup_code + test_list`."""
    tasks = []
    for row in _rows(source, "mbpp.jsonl.gz", ("mbpp", "full", "test")):
        _require(row, ("task_id", "text", "code", "test_list"), "MBPP")
        if int(row["task_id"]) not in MBPP_TEST_IDS:
            continue
        test = "\n".join([row.get("test_setup_code") or "", *row["test_list"], ""])
        tasks.append(ProgramTask(
            task_id=str(row["task_id"]), prompt="", description=row["text"],
            entry_point=mbpp_entry_point(row["code"], row["test_list"]),
            canonical_solution=row["code"], test=test,
        ))
    return tasks


def _diff_task(row: dict[str, Any], what: str, deserialize: Callable[[str, list], list]) -> DiffTask:
    _require(row, ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol"),
             f"{what} (needs EvalPlus's release file with base_input/plus_input; the hub copy lacks them)")
    return DiffTask(
        task_id=row["task_id"], prompt=row["prompt"], entry_point=row["entry_point"],
        canonical_solution=row["canonical_solution"], atol=float(row["atol"]),
        base_inputs=deserialize(row["task_id"], row["base_input"] or []),
        # MBPP+ writes a task without plus inputs as `{}`.
        plus_inputs=deserialize(row["task_id"], row["plus_input"] or []),
    )


def load_humanevalplus(source: Source = None) -> list[DiffTask]:
    """HumanEval+ v0.1.10 (EvalPlus's release file)."""
    rows = _rows(source, "HumanEvalPlus-v0.1.10.jsonl.gz", ("evalplus/humanevalplus", None, "test"))
    return [_diff_task(row, "HumanEval+", lambda _task_id, inputs: inputs) for row in rows]


def load_mbppplus(source: Source = None) -> list[DiffTask]:
    """MBPP+ v0.2.0 (EvalPlus's release file), with tuples/sets/complex inputs restored."""
    rows = _rows(source, "MbppPlus-v0.2.0.jsonl.gz", ("evalplus/mbppplus", None, "test"))
    return [_diff_task(row, "MBPP+", deserialize_inputs) for row in rows]


def load_cruxeval(source: Source = None) -> list[CruxTask]:
    """CRUXEval's 800 samples (`id` becomes `task_id`)."""
    tasks = []
    for row in _rows(source, "cruxeval.jsonl.gz", ("cruxeval-org/cruxeval", None, "test")):
        _require(row, ("id", "code", "input", "output"), "CRUXEval")
        tasks.append(CruxTask(task_id=row["id"], code=row["code"], input=row["input"], output=row["output"]))
    return tasks


_LOADERS: dict[str, Callable[[Source], list[Any]]] = {
    "humaneval": load_humaneval,
    "humaneval+": load_humanevalplus,
    "mbpp": load_mbpp,
    "mbpp+": load_mbppplus,
    "cruxeval-i": load_cruxeval,
    "cruxeval-o": load_cruxeval,
    "humanevalfix": load_humanevalfix,
}
BENCHMARKS = tuple(_LOADERS)


def load_benchmark(benchmark: str, source: Source = None) -> list[Any]:
    """The tasks of `benchmark` (one of BENCHMARKS), in dataset order."""
    if benchmark not in _LOADERS:
        raise DatasetError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    tasks = _LOADERS[benchmark](source)
    if not tasks:
        raise DatasetError(f"{benchmark}: the dataset holds no tasks")
    return tasks
