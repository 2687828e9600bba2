"""What the integrity checks cost a repair run that fixes: with and without the independent confirmation and
the static screen, side by side, interleaved (A, B, A, B ...), in one process and one warm sandbox pool.

Two runs that end `fixed`:
- project: `semcoder repair examples/inventory` (mutation engine, no model), the README's main job;
- function: the function-level bench (`grades.py`, five tests, a scripted model whose first answer is the fix).
Arm "checked" is the product as shipped: screen, tamper checks, confirmation. Arm "unchecked" replaces the
confirmation by an immediate yes and the screen by a no-op (the driver's tamper checks stay: they are part of
the one test run and cost microseconds). Target: checked / unchecked <= 1.15 (median of pairs).

    python benchmarks/verdict_cost.py [--pairs 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import sandbox
from agent.graph import build_graph, initial_state
from agent.models import Completion, GenerationRequest, GenerationResult, Usage
from agent.nodes import NodeDeps
from agent.nodes import execute as execute_node
from agent.persistence import RunStore
from agent.state import RunConfig
from agent.tasks import TestRunner, function_task, project_task
from agent.verdict import Confirmation

ROOT = Path(__file__).resolve().parents[1]
BUGGY = "def grade(score):\n    if score > 90:\n        return 'A'\n    if score > 80:\n        return 'B'\n    return 'C'\n"
FIXED = BUGGY.replace("> 90", ">= 90").replace("> 80", ">= 80")
TESTS = "from grades import grade\n\n\n" + "\n\n".join(
    f"def test_{i}():\n    assert grade({score}) == {letter!r}\n"
    for i, (score, letter) in enumerate([(95, "A"), (90, "A"), (85, "B"), (80, "B"), (10, "C")]))


class FixingModel:
    def complete(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        answer = f"[MONOLOGUE]\n...\n[Refined]\n```python\n{FIXED}```\n[/Refined]"
        return [GenerationResult(completions=[Completion(text=answer, finish_reason="stop")],
                                 usage=Usage(prompt_tokens=10, completion_tokens=10)) for _ in requests]


class UncheckedRunner(TestRunner):
    """The same test runs, without the confirmation (every pass taken as it is)."""

    def confirm(self, task, workspace, test_ids, timeouts=None):  # type: ignore[override]
        return Confirmation(confirmed=True, by_runner=len(test_ids))


def one_run(pool: sandbox.Pool, task, config: RunConfig, model, checked: bool) -> float:
    runner = (TestRunner if checked else UncheckedRunner)(pool, test_timeout_s=config.test_timeout_s)
    snapshots = RunStore.in_memory().snapshots
    graph = build_graph(NodeDeps(runner=runner, snapshots=snapshots, model=model))
    screen = execute_node.screen
    if not checked:
        execute_node.screen = lambda *args, **kwargs: []
    try:
        start = time.perf_counter()
        final = graph.invoke(initial_state(uuid.uuid4().hex[:8], task, config, snapshots),
                             {"recursion_limit": 1000})
        seconds = time.perf_counter() - start
    finally:
        execute_node.screen = screen
    assert final["status"] == "fixed", final["stop_reason"]
    return seconds


def pairs(run: Callable[[bool], float], count: int) -> tuple[list[float], list[float]]:
    run(True), run(False)  # warm both paths (imports, pool children)
    checked, unchecked = [], []
    for _ in range(count):
        checked.append(run(True))
        unchecked.append(run(False))
    return checked, unchecked


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cpus; kernel {platform.release()}; "
          f"load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as scratch, sandbox.Pool(workers=2) as pool:
        print(f"sandbox: {pool.isolation_report()}")
        project = shutil.copytree(ROOT / "examples" / "inventory", Path(scratch) / "inventory")
        (Path(scratch) / "grades.py").write_text(BUGGY)
        (Path(scratch) / "test_grades.py").write_text(TESTS)
        cases = {
            "project: examples/inventory (mutation)": lambda checked: one_run(
                pool, project_task(project), RunConfig(), None, checked),
            "function: grades.py (scripted model)": lambda checked: one_run(
                pool, function_task(Path(scratch) / "grades.py", Path(scratch) / "test_grades.py"),
                RunConfig(model="bench:fix", patcher="model", samples=1), FixingModel(), checked),
        }
        print(f"\n{'run that fixes':42} {'checked s':>10} {'unchecked s':>12} {'ratio med':>10} {'ratio min':>10}")
        for name, run in cases.items():
            checked, unchecked = pairs(run, args.pairs)
            ratios = [c / u for c, u in zip(checked, unchecked, strict=True)]
            print(f"{name:42} {statistics.median(checked):10.3f} {statistics.median(unchecked):12.3f} "
                  f"{statistics.median(ratios):10.3f} {min(ratios):10.3f}")
        print(f"\n{args.pairs} interleaved pairs per row; target: median ratio <= 1.15")


if __name__ == "__main__":
    main()
