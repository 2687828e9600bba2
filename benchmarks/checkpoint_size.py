"""What a repair run writes to its run database per step, for a small and a large project.

A synthetic project (N generated modules of filler code plus binary fixtures, around 10 MB, and one buggy
function with its failing test that no single mutant fixes) and a small one (the same bug, few modules) are
repaired model-free (`semcoder repair DIR --patcher mutation`) for a few iterations. From each run's SQLite
database it prints the checkpoint rows' bytes per step (LangGraph's `checkpoints` and `writes` tables), the
task snapshot stored beside them, and the file's size.

`--baseline REV` runs the same projects with the agent and sandbox packages of git revision REV as well
(exported to a temp dir), so code before and after a change shows side by side.

    python benchmarks/checkpoint_size.py [--modules 500] [--iterations 3] [--baseline REV]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEMCODER = [sys.executable, "-c", "from agent.cli import main; main()"]

BUGGY = '''def scale(values, factor):
    """Positive values times factor plus 3; the others minus twice the factor."""
    result = []
    for value in values:
        if value > 0:
            result.append(value * factor + 1)
        else:
            result.append(value - factor)
    return result
'''
TESTS = '''from calc.core import scale


def test_positive():
    assert scale([1, 2], 2) == [5, 7]


def test_negative():
    assert scale([-1], 2) == [-5]


def test_empty():
    assert scale([], 3) == []
'''


def filler_module(index: int, size: int) -> str:
    parts = [f'"""Generated module {index}: filler that makes the project large."""\n']
    j = 0
    while sum(map(len, parts)) < size:
        parts.append(f"\n\ndef helper_{index}_{j}(value):\n    \"\"\"Scale value by {j} and shift it by "
                     f"{index}.\"\"\"\n    total = value * {j}\n    return total + {index}\n")
        j += 1
    return "".join(parts)


def make_project(root: Path, modules: int, module_bytes: int, data_bytes: int) -> int:
    """Writes the project; returns its size in bytes."""
    files: dict[str, bytes] = {"calc/__init__.py": b"", "calc/core.py": BUGGY.encode(),
                               "tests/test_core.py": TESTS.encode()}
    for index in range(modules):
        files[f"pkg{index // 100}/mod_{index}.py"] = filler_module(index, module_bytes).encode()
    for package in {path.split("/")[0] for path in files if path.startswith("pkg")}:
        files[f"{package}/__init__.py"] = b""
    noise = random.Random(0)
    for index in range(data_bytes // 500_000):  # not UTF-8: stored in the task as base64
        files[f"fixtures/blob_{index}.bin"] = noise.randbytes(500_000)
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return sum(map(len, files.values()))


def export(revision: str, into: Path) -> Path:
    """The agent and sandbox packages as they were at `revision`."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision, "agent", "sandbox"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def repair(code: Path, project: Path, db: Path, iterations: int, mutants: int) -> tuple[dict, float]:
    start = time.monotonic()
    done = subprocess.run([*SEMCODER, "repair", str(project), "--db", str(db), "--patcher", "mutation",
                           "--max-iterations", str(iterations), "--mutants-per-step", str(mutants), "--json"],
                          cwd=code, capture_output=True, text=True, timeout=1800)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1]), time.monotonic() - start
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"the run in {code} failed:\n{done.stderr[-3000:]}") from None


def measure(db: Path) -> dict[str, float]:
    with sqlite3.connect(db) as connection:
        def one(sql: str) -> float:
            return connection.execute(sql).fetchone()[0] or 0

        steps = one("SELECT COUNT(*) FROM checkpoints")
        rows = one("SELECT SUM(LENGTH(checkpoint) + LENGTH(metadata)) FROM checkpoints") + \
            one("SELECT SUM(LENGTH(value)) FROM writes")
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        snapshot = one("SELECT SUM(LENGTH(task)) FROM semcoder_snapshots") if "semcoder_snapshots" in tables else 0
    return {"steps": steps, "per_step": rows / steps, "checkpoints": rows, "snapshot": snapshot,
            "db": db.stat().st_size}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=500)
    parser.add_argument("--module-bytes", type=int, default=12_000, help="Text per generated module.")
    parser.add_argument("--data-bytes", type=int, default=4_000_000, help="Binary fixtures in the large project.")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--mutants-per-step", type=int, default=4)
    parser.add_argument("--baseline", metavar="REV", help="Also run the code of this git revision.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="checkpoint-size-") as temp:
        temp_dir = Path(temp)
        projects = {"small": make_project(temp_dir / "small", 3, 2_000, 0),
                    "large": make_project(temp_dir / "large", args.modules, args.module_bytes, args.data_bytes)}
        codes = {"this tree": ROOT}
        if args.baseline:
            codes = {args.baseline: export(args.baseline, temp_dir / "baseline"), **codes}
        header = (f"{'code':<12} {'project':<8} {'project MB':>10} {'steps':>5} {'written/step':>13} "
                  f"{'checkpoints':>12} {'snapshot':>10} {'db file':>10} {'status':>9} {'wall s':>7}")
        print(header)
        print("-" * len(header))
        for label, code in codes.items():
            for name, size in projects.items():
                db = temp_dir / f"{label.replace(' ', '_')}-{name}.sqlite"
                outcome, wall = repair(code, temp_dir / name, db, args.iterations, args.mutants_per_step)
                m = measure(db)
                print(f"{label:<12} {name:<8} {size / 1e6:>10.2f} {m['steps']:>5} {_size(m['per_step']):>13} "
                      f"{_size(m['checkpoints']):>12} {_size(m['snapshot']):>10} {_size(m['db']):>10} "
                      f"{outcome['status']:>9} {wall:>7.1f}", flush=True)


def _size(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} KB"


if __name__ == "__main__":
    main()
