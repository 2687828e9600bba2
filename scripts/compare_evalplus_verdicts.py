"""Dev script: do `semcoder eval` and EvalPlus 0.3.1 give the same verdicts on deliberately wrong samples?

For every HumanEval+ (or MBPP+) task it writes the canonical solution plus mechanical mutants of
it (a flipped comparison, +/- swapped, an integer constant + 1, the return value dropped) and a
few cheats (an always-true __eq__ object, exiting at import, a too-slow solution), scores the
file with both tools and prints every sample on which they disagree, with both reasons.

    python scripts/compare_evalplus_verdicts.py humaneval+ [--evalplus-python PATH] [--workers 2]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from eval_throughput import ensure_evalplus  # noqa: E402

from evals._config import EvalConfig  # noqa: E402
from evals._samples import Sample  # noqa: E402
from evals.loaders import DATA_DIR, load_humanevalplus, load_mbppplus  # noqa: E402
from evals.scoring import open_runner, verdicts_for  # noqa: E402

DATASETS = {"humaneval+": ("humaneval", "HUMANEVAL_OVERRIDE_PATH", "HumanEvalPlus-v0.1.10.jsonl.gz", load_humanevalplus),
            "mbpp+": ("mbpp", "MBPP_OVERRIDE_PATH", "MbppPlus-v0.2.0.jsonl.gz", load_mbppplus)}


SWAP_COMPARE = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                ast.NotEq: ast.Eq}


class _Mutator(ast.NodeTransformer):
    """Applies one kind of mutation to the first node it fits."""

    def __init__(self, kind: str) -> None:
        self.kind, self.done = kind, False

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        if self.kind == "compare" and not self.done and type(node.ops[0]) in SWAP_COMPARE:
            node.ops[0], self.done = SWAP_COMPARE[type(node.ops[0])](), True
        return self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if self.kind == "arith" and not self.done and isinstance(node.op, ast.Add | ast.Sub):
            node.op, self.done = (ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()), True
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if self.kind == "constant" and not self.done and type(node.value) is int:
            self.done = True
            return ast.copy_location(ast.Constant(node.value + 1), node)
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        if self.kind == "return" and not self.done and node.value is not None:
            self.done = True
            return ast.copy_location(ast.Return(value=None), node)
        return self.generic_visit(node)


def mutants(program: str, entry_point: str) -> dict[str, str]:
    found = {}
    for kind in ("compare", "arith", "constant", "return"):
        tree = ast.parse(program)
        target = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == entry_point), None)
        if target is None:
            continue
        mutator = _Mutator(kind)
        mutator.visit(target)
        if mutator.done:
            found[kind] = ast.unparse(tree)
    return found


def cheats(program: str, entry_point: str) -> dict[str, str]:
    always_equal = (f"\n\nclass _Yes:\n    def __eq__(self, other):\n        return True\n\n"
                    f"def {entry_point}(*args, **kwargs):\n    return _Yes()\n")
    return {"always-true __eq__": program + always_equal,
            "exit at import": "import sys\nsys.exit(0)\n" + program,
            "too slow": program + f"\n\n_real = {entry_point}\ndef {entry_point}(*args):\n"
                                  "    import time\n    end = time.process_time() + 1.2\n"
                                  "    while time.process_time() < end:\n        pass\n    return _real(*args)\n"}


def build_samples(tasks) -> list[tuple[str, str, str]]:
    """(task_id, kind, program) with the canonical solution first for every task."""
    rows = []
    for task in tasks:
        canonical = task.program(task.canonical_solution)
        rows.append((task.task_id, "canonical", canonical))
        variants = {**mutants(canonical, task.entry_point)}
        if task is tasks[0] or task.task_id.endswith("0"):  # cheats on a tenth of the tasks
            variants.update(cheats(canonical, task.entry_point))
        rows.extend((task.task_id, kind, program) for kind, program in variants.items())
    return rows


def evalplus_verdicts(python: str, dataset: str, env_var: str, data: Path, rows, workdir: Path, workers: int):
    samples = workdir / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t, "solution": p}) + "\n" for t, _, p in rows))
    env = {**os.environ, env_var: str(data), "XDG_CACHE_HOME": str(workdir / "cache")}
    subprocess.run([python, "-m", "evalplus.evaluate", "--dataset", dataset, "--samples", str(samples),
                    "--parallel", str(workers), "--i_just_wanna_run"], env=env, check=True, capture_output=True)
    results = json.loads((workdir / "samples_eval_results.json").read_text())["eval"]
    seen: Counter[str] = Counter()
    verdicts = []
    for task_id, _, _ in rows:
        result = results[task_id][seen[task_id]]
        seen[task_id] += 1
        verdicts.append((result["base_status"] == result["plus_status"] == "pass",
                         f"base {result['base_status']}, plus {result['plus_status']}"))
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=sorted(DATASETS))
    parser.add_argument("--evalplus-python", default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    dataset, env_var, filename, load = DATASETS[args.benchmark]
    tasks = load()
    rows = build_samples(tasks)
    python = ensure_evalplus(args.evalplus_python)
    config = EvalConfig(workers=args.workers)
    with open_runner(config) as runner:
        ours = verdicts_for(args.benchmark, tasks, [Sample(task_id=t, text=p) for t, _, p in rows], runner, config)
    with tempfile.TemporaryDirectory(prefix="evalplus-compare-") as tmp:
        theirs = evalplus_verdicts(python, dataset, env_var, DATA_DIR / filename, rows, Path(tmp), args.workers)
    report(rows, ours, theirs)


def report(rows, ours, theirs) -> None:
    kinds = Counter(kind for _, kind, _ in rows)
    print(f"{len(rows)} samples: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    print(f"ours pass {sum(v.passed for v in ours)}, EvalPlus pass {sum(ok for ok, _ in theirs)}")
    differ = [(row, mine, their) for row, mine, their in zip(rows, ours, theirs, strict=True) if mine.passed != their[0]]
    print(f"{len(differ)} differ:")
    for (task_id, kind, _), mine, (their_ok, their_detail) in differ:
        print(f"  {task_id} [{kind}]: ours {'pass' if mine.passed else 'fail'} ({mine.detail[:100]}); "
              f"EvalPlus {'pass' if their_ok else 'fail'} ({their_detail})")


if __name__ == "__main__":
    main()
