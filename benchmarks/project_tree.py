"""What a project's non-code part costs a test run now that it is linked read-only, not copied: by its size.

One small project (a module, a test that reads 4 bytes at each end of `data/big.bin`) with that data file at
1 KB, 20 MB and 200 MB (and, with --huge, 2 GB): sparse files, so the disk holds almost nothing. Plus two
shapes that say what the link rule costs: 10,000 small files in a data folder (one link), and 1,000 data files
beside the code in a folder that holds task files (1,000 links); the 10,000 files are then run again with pytest
given `tests` (without paths, pytest's own discovery walks data/ through its link, as it does in the checkout).
For each: the snapshot's seconds
(`project_task`), the bytes of one job's message to the worker, and the per-run wall time of a warm
TestRunner run (median of --runs, rounds interleaved across the shapes since the machine's load drifts), with
its ratio to the 1 KB project.

    python benchmarks/project_tree.py [--runs 7] [--huge]
"""

from __future__ import annotations

import argparse
import marshal
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sandbox
from agent.tasks import TestRunner, project_task
from sandbox._worker import job_message
from sandbox.job import to_request

TEST = """import os
from calc import double


def test_data():
    with open("data/big.bin", "rb") as handle:
        head = handle.read(4)
        handle.seek(-4, os.SEEK_END)
        assert head == bytes(4) and handle.read() == b"tail"
    assert double(2) == 4
"""


class Recording:
    def __init__(self, pool: sandbox.Pool) -> None:
        self.pool, self.python, self.jobs = pool, pool.python, []

    def submit_job(self, job, *, urgent: bool = False):
        self.jobs.append(job)
        return self.pool.submit_job(job, urgent=urgent)


def build(root: Path, size: int, small_files: int = 0, beside_code: int = 0) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "calc.py").write_text("def double(x):\n    return x + x\n")
    (root / "tests" / "test_calc.py").write_text(TEST)
    with open(root / "data" / "big.bin", "wb") as handle:
        handle.seek(size - 4)
        handle.write(b"tail")
    for i in range(small_files):
        (root / "data" / f"row{i:05d}.csv").write_text("a,b\n")
    for i in range(beside_code):
        (root / "tests" / f"fixture{i:04d}.json").write_text("{}")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--huge", action="store_true", help="also a 2 GB data file")
    args = parser.parse_args()
    shapes = [("1 KB", 1024, 0, 0, []), ("20 MB", 20 << 20, 0, 0, []), ("200 MB", 200 << 20, 0, 0, [])]
    if args.huge:
        shapes.append(("2 GB", 2 << 30, 0, 0, []))
    shapes += [("10k files in data/", 1024, 10_000, 0, []), ("  same, pytest tests/", 1024, 10_000, 0, ["tests"]),
               ("1k files in tests/", 1024, 0, 1000, [])]
    with tempfile.TemporaryDirectory(prefix="project-tree-") as scratch, sandbox.Pool(workers=1) as pool:
        rows = {}
        for name, size, small, beside, paths in shapes:
            root = build(Path(scratch) / f"s{len(rows)}" / "proj", size, small, beside)
            started = time.perf_counter()
            task = project_task(root).model_copy(update={"test_paths": paths})
            snapshot_s = time.perf_counter() - started
            recording = Recording(pool)
            runner = TestRunner(recording, test_timeout_s=30)
            report = runner.run(task, [task.files])[0]  # the baseline: learns the preload, warms the worker
            assert not report.problem and report.passed == 1, report
            message = len(marshal.dumps(job_message(to_request(recording.jobs[-1])[0], pool._backend.support)))
            rows[name] = {"snapshot_s": snapshot_s, "bytes": message, "times": [], "task": task, "runner": runner}
        for _ in range(args.runs):  # interleaved rounds; each shape's run may need a fresh worker (another tree)
            for row in rows.values():
                for _warm in range(3):  # the first runs after a tree change restart the worker and preload: not counted
                    started = time.perf_counter()
                    report = row["runner"].run(row["task"], [dict(row["task"].files)], coverage=False)[0]
                    elapsed = time.perf_counter() - started
                    assert report.passed == 1, report
                row["times"].append(elapsed)
    base = statistics.median(rows["1 KB"]["times"])
    print(f"machine: {os.cpu_count()} cores; median of {args.runs} warm runs per shape (3rd of each shape's turn)")
    print(f"{'project':22} {'snapshot s':>10} {'job bytes':>10} {'run s':>7} {'min s':>7} {'run / 1 KB':>10}")
    for name, row in rows.items():
        median = statistics.median(row["times"])
        print(f"{name:22} {row['snapshot_s']:10.4f} {row['bytes']:10d} {median:7.3f} {min(row['times']):7.3f} "
              f"{median / base:10.2f}")


if __name__ == "__main__":
    main()
