"""Per-execution latency of the sandbox, side by side with a bare interpreter start-up.

Rows: bare `python -c pass` in a subprocess (same interpreter), a cold local sandbox
(`sandbox.run`, a fresh bubblewrap sandbox per run), the warm local pool, and Docker
(`sandbox.run(..., backend="docker")`, or "unavailable"). Each row runs a HumanEval-sized job
(define a function, assert on it) except the bare row, which only starts the interpreter.

Targets: warm-pool p50 <= 5 ms; cold local sandbox p50 <= 1.5x bare.

    python benchmarks/sandbox_latency.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import sandbox
from sandbox import ExecRequest, Pool, SandboxError, Status

JOB = '''
def has_close_elements(numbers, threshold):
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False

assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)
assert not has_close_elements([1.0, 2.0, 3.0, 4.0, 5.0], 0.5)
print("passed")
'''


def timed(action: Callable[[], None], runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        action()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def bare() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def checked(result: sandbox.ExecResult) -> None:
    if result.status is not Status.ok or result.stdout != "passed\n":
        raise SystemExit(f"benchmark job failed in the sandbox: {result}")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100, help="timed executions per row")
    args = parser.parse_args()

    rows: dict[str, list[float] | None] = {}
    rows["bare python -c pass"] = timed(bare, args.runs)
    rows["cold local sandbox"] = timed(lambda: checked(sandbox.run(JOB)), args.runs)
    with Pool(workers=1) as pool:
        request = ExecRequest(code=JOB)
        rows["warm pool (1 worker)"] = timed(lambda: checked(pool.submit(request).result()), args.runs)
    try:
        checked(sandbox.run(JOB, backend="docker"))
        rows["docker"] = timed(lambda: checked(sandbox.run(JOB, backend="docker")), max(10, args.runs // 5))
    except SandboxError as exc:
        print(f"docker unavailable: {exc}", file=sys.stderr)
        rows["docker"] = None

    base = statistics.median(rows["bare python -c pass"])  # type: ignore[arg-type]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"sandbox latency per execution, {args.runs} runs per row, {sys.executable}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (the numbers are only meaningful when quiet)")
    print(f"{'row':<24}{'p50 ms':>10}{'p95 ms':>10}{'p50 / bare':>12}")
    for name, samples in rows.items():
        if samples is None:
            print(f"{name:<24}{'unavailable':>10}")
            continue
        p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
        print(f"{name:<24}{p50 * 1000:>10.2f}{p95 * 1000:>10.2f}{p50 / base:>11.2f}x")
    warm = percentile(rows["warm pool (1 worker)"], 0.5)  # type: ignore[arg-type]
    cold = percentile(rows["cold local sandbox"], 0.5)  # type: ignore[arg-type]
    print(f"targets: warm p50 <= 5 ms: {'MET' if warm <= 0.005 else 'MISSED'} ({warm * 1000:.2f} ms); "
          f"cold p50 <= 1.5x bare: {'MET' if cold <= 1.5 * base else 'MISSED'} ({cold / base:.2f}x)")


if __name__ == "__main__":
    main()
