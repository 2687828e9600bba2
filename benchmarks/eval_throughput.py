"""`semcoder eval humaneval+` vs EvalPlus 0.3.1's `evalplus.evaluate` on HumanEval+'s canonical solutions.

Both tools score the same samples file (the 164 canonical solutions, all 1,570 base and 122,683 plus
inputs) in the same run, alternating, each with the same number of parallel workers. EvalPlus runs
in its own venv (created on first use: `pip install evalplus==0.3.1`), offline through
HUMANEVAL_OVERRIDE_PATH pointing at the HumanEval+ file shipped in evals/data. Each tool first runs
once "cold" (computing and caching its expected outputs); the "warm" rows are the median of
--repeats runs with the caches in place, which is what scoring costs day to day.

    python benchmarks/eval_throughput.py [--repeats 3] [--workers 2] [--evalplus-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HUMANEVALPLUS = ROOT / "evals" / "data" / "HumanEvalPlus-v0.1.10.jsonl.gz"
EVALPLUS_VENV = Path.home() / ".cache" / "semcoder" / "evalplus-venv"
# evalplus 0.3.1's evaluate path imports these; its model-provider extras (transformers, openai, ...) it does not.
EVALPLUS_DEPS = ["wget", "tempdir", "multipledispatch", "appdirs", "numpy", "tqdm", "termcolor", "fire", "psutil",
                 "rich", "tree-sitter", "tree-sitter-python", "datasets"]


def ensure_evalplus(python: str | None) -> str:
    if python:
        return python
    venv_python = EVALPLUS_VENV / "bin" / "python"
    if not venv_python.exists():
        print(f"creating {EVALPLUS_VENV} with evalplus==0.3.1 ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(EVALPLUS_VENV)], check=True)
        pip = [str(venv_python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--no-deps", "evalplus==0.3.1"], check=True)
        subprocess.run([*pip, *EVALPLUS_DEPS], check=True)
    return str(venv_python)


def write_samples(path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from evals.loaders import load_humanevalplus

    with path.open("w") as handle:
        for task in load_humanevalplus(HUMANEVALPLUS):
            handle.write(json.dumps({"task_id": task.task_id, "solution": task.prompt + task.canonical_solution}) + "\n")


def run_ours(samples: Path, env: dict[str, str], workers: int) -> tuple[float, float, str]:
    command = [sys.executable, "-m", "agent.cli", "eval", "humaneval+", "--samples", str(samples), "--json",
               "--quiet", "--workers", str(workers)]
    start = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"semcoder eval failed:\n{out.stderr[-2000:]}")
    report = json.loads(out.stdout)
    failed = sorted(t for t, s in report["per_task"].items() if s["passed"] < s["n"])
    return wall, report["pass@1"], ", ".join(failed) or "-"


def run_evalplus(python: str, samples: Path, env: dict[str, str], workers: int) -> tuple[float, float, str]:
    command = [python, "-m", "evalplus.evaluate", "--dataset", "humaneval", "--samples", str(samples),
               "--parallel", str(workers), "--i_just_wanna_run"]
    results_path = samples.with_name(samples.stem + "_eval_results.json")
    results_path.unlink(missing_ok=True)  # else evalplus asks on stdin whether to overwrite it
    start = time.perf_counter()
    out = subprocess.run(command, env={**env, "HUMANEVAL_OVERRIDE_PATH": str(HUMANEVALPLUS)},
                         capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"evalplus.evaluate failed:\n{out.stderr[-2000:]}")
    plus = re.search(r"humaneval\+ \(base \+ extra tests\)\s*pass@1:\s*([0-9.]+)", out.stdout)
    results = json.loads(results_path.read_text())
    failed = sorted(t for t, rs in results["eval"].items()
                    if any(r["base_status"] != "pass" or r["plus_status"] != "pass" for r in rs))
    return wall, float(plus.group(1)) if plus else float("nan"), ", ".join(failed) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--evalplus-python", default=None, help="A Python with evalplus 0.3.1 (default: own venv).")
    args = parser.parse_args()
    python = ensure_evalplus(args.evalplus_python)
    with tempfile.TemporaryDirectory(prefix="eval-bench-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache")}  # both tools cache expected outputs here
        ours_samples, theirs_samples = work / "ours" / "samples.jsonl", work / "evalplus" / "samples.jsonl"
        for path in (ours_samples, theirs_samples):
            path.parent.mkdir()
            write_samples(path)
        rows = {"semcoder eval": [], "evalplus.evaluate": []}
        runners = {"semcoder eval": lambda: run_ours(ours_samples, env, args.workers),
                   "evalplus.evaluate": lambda: run_evalplus(python, theirs_samples, env, args.workers)}
        for round_number in range(args.repeats + 1):  # round 0 is cold: expected outputs computed
            for name, run in runners.items():
                rows[name].append(run())
                print(f"round {round_number} {name}: {rows[name][-1][0]:.1f}s", file=sys.stderr)
    print_table(rows, args.workers)


def print_table(rows: dict[str, list[tuple[float, float, str]]], workers: int) -> None:
    theirs_warm = statistics.median(r[0] for r in rows["evalplus.evaluate"][1:])
    theirs_cold = rows["evalplus.evaluate"][0][0]
    print(f"HumanEval+ canonical solutions (164 tasks, 124,253 inputs), {workers} workers each, "
          f"median of {len(rows['evalplus.evaluate']) - 1} warm runs")
    print("| tool | cold wall s (incl. expected outputs) | warm wall s | warm ratio vs EvalPlus | pass@1 | failed tasks |")
    print("|---|---|---|---|---|---|")
    for name, runs in rows.items():
        warm = statistics.median(r[0] for r in runs[1:])
        print(f"| {name} | {runs[0][0]:.1f} ({runs[0][0] / theirs_cold:.2f}x) | {warm:.1f} | "
              f"{warm / theirs_warm:.2f}x | {runs[-1][1]:.4f} | {runs[-1][2]} |")


if __name__ == "__main__":
    main()
