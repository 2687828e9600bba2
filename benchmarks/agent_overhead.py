"""Orchestration overhead of the repair loop: time per iteration spent outside the model and the sandbox.

A scripted model that takes 1 s per call (as a small served model might) answers every step with a
patch that does not fix the bug, so the loop runs its full iteration budget. The wall time of the
whole run is split into model time, sandbox time (test runs and traces) and the rest: LangGraph,
state (de)serialization, SQLite checkpoints, prompt building, parsing, localization, routing.

    python benchmarks/agent_overhead.py [--iterations 5] [--model-seconds 1.0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import sandbox
from agent.graph import build_graph, initial_state, thread_config
from agent.models import Completion, GenerationRequest, GenerationResult, Usage
from agent.nodes import NodeDeps
from agent.persistence import open_store
from agent.state import RunConfig
from agent.tasks import TestRunner, function_task

BUGGY = "def grade(score):\n    if score > 90:\n        return 'A'\n    if score > 80:\n        return 'B'\n    return 'C'\n"
TESTS = "from grades import grade\n\n\n" + "\n\n".join(
    f"def test_{i}():\n    assert grade({score}) == {letter!r}\n"
    for i, (score, letter) in enumerate([(95, "A"), (90, "A"), (85, "B"), (80, "B"), (10, "C")]))
NOT_A_FIX = ("[MONOLOGUE]\n### Execution Simulation\n...\n### Root Cause Analysis\n...\n[Refined]\n```python\n"
             "def grade(score):\n    return 'C'\n```\n[/Refined]")


class Stopwatch:
    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


class SlowModel:
    def __init__(self, seconds: float, samples: int) -> None:
        self.seconds, self.samples = seconds, samples

    def complete(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        time.sleep(self.seconds)
        return [GenerationResult(completions=[Completion(text=NOT_A_FIX, finish_reason="stop")] * self.samples,
                                 usage=Usage(prompt_tokens=300, completion_tokens=200)) for _ in requests]


def measure(workdir: Path, feedback: str, checkpointed: bool, iterations: int, model_seconds: float,
            pool: sandbox.Pool) -> dict[str, float]:
    task = function_task(workdir / "grades.py", workdir / "test_grades.py")
    config = RunConfig(model="bench:slow", patcher="model", feedback=feedback, max_iterations=iterations, samples=2)
    model_time, sandbox_time = Stopwatch(), Stopwatch()
    runner = TestRunner(pool)
    runner.run = sandbox_time.wrap(runner.run)  # type: ignore[method-assign]
    model = SlowModel(model_seconds, config.samples)
    model.complete = model_time.wrap(model.complete)  # type: ignore[method-assign]
    with open_store(workdir / f"{uuid.uuid4().hex}.sqlite") as store:
        deps = NodeDeps(runner=runner, snapshots=store.snapshots, model=model)
        deps.tracer.trace = sandbox_time.wrap(deps.tracer.trace)  # type: ignore[union-attr]  # traced in the sandbox too
        graph = build_graph(deps, store.checkpointer if checkpointed else None)
        run_id = uuid.uuid4().hex
        start = time.perf_counter()
        final = graph.invoke(initial_state(run_id, task, config, store.snapshots),
                             thread_config(run_id) if checkpointed else {"recursion_limit": 10_000},
                             durability="sync" if checkpointed else None)
        total = time.perf_counter() - start
    assert final["iteration"] == iterations and final["status"] == "not_fixed", final.get("stop_reason")
    other = total - model_time.seconds - sandbox_time.seconds
    return {"iteration_s": total / iterations, "model_s": model_time.seconds / iterations,
            "sandbox_s": sandbox_time.seconds / iterations, "orchestration_s": other / iterations,
            "share": other / total}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--model-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sandbox.Pool(workers=2) as pool:
        workdir = Path(tmp)
        (workdir / "grades.py").write_text(BUGGY)
        (workdir / "test_grades.py").write_text(TESTS)
        for feedback, checkpointed in (("semcoder", True), ("trace", True), ("semcoder", False)):
            result = measure(workdir, feedback, checkpointed, args.iterations, args.model_seconds, pool)
            rows.append((feedback, "sqlite (sync)" if checkpointed else "none", result))
    print(f"agent orchestration overhead: {args.iterations} iterations per run, model {args.model_seconds:.1f} s "
          "per call, 2 samples per step, sandbox pool of 2")
    print("| feedback | checkpointer | iteration (s) | model (s) | sandbox (s) | orchestration (s) | orchestration share |")
    print("|---|---|---|---|---|---|---|")
    for feedback, checkpointer, r in rows:
        print(f"| {feedback} | {checkpointer} | {r['iteration_s']:.3f} | {r['model_s']:.3f} | {r['sandbox_s']:.3f} "
              f"| {r['orchestration_s']:.4f} | {100 * r['share']:.2f}% |")
    worst = max(r["share"] for _, _, r in rows)
    print(f"target: orchestration <= 5% of an iteration; worst measured: {100 * worst:.2f}% "
          f"({'met' if worst <= 0.05 else 'NOT met'})")


if __name__ == "__main__":
    main()
