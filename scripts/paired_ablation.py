"""Paired comparison of two scored runs on the same tasks (e.g. the monologue ablation's two arms).

    semcoder eval cruxeval-o --samples A.json --data heldout.jsonl --json > a.json   # and the same for B
    python3 scripts/paired_ablation.py a.json b.json --names with-monologue without-monologue

A run is either that JSON report or the --out folder of `semcoder eval BENCH --model URL` (its tasks.jsonl).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.eval_report import TASKS_FILE, TaskOutcome
from evals.paired import compare_solved


def solved(report_path: Path) -> dict[str, bool]:
    """pass@1 per task from `semcoder eval --json`, or from an eval --out folder: solved when its (first) sample
    passed."""
    if report_path.is_dir():
        return solved_in_run(report_path)
    per_task = json.loads(report_path.read_text())["per_task"]
    return {task: score["passed"] > 0 for task, score in per_task.items()}


def solved_in_run(out_dir: Path) -> dict[str, bool]:
    """The generated answers' verdicts (round 0, first sample) from a `semcoder eval --model` folder."""
    solved = {}
    for line in (out_dir / TASKS_FILE).read_text().splitlines():
        if line.strip():
            task = TaskOutcome.model_validate_json(line)
            solved[task.task_id] = task.rounds[0].samples[0].passed
    return solved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--names", nargs=2, default=["A", "B"])
    args = parser.parse_args()
    a, b = solved(args.a), solved(args.b)
    result = compare_solved(a, b)
    rate = {name: 100 * sum(s.values()) / len(s) for name, s in zip(args.names, (a, b), strict=True)}
    print(" | ".join(f"{name} {value:.2f}%" for name, value in rate.items()))
    print(result.summary(*args.names))


if __name__ == "__main__":
    main()
