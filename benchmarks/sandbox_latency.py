"""Per-execution latency of the sandbox, side by side with a bare interpreter start-up (issue #20 parts 1 and 4).

Rows, interleaved run by run (bare, cold, warm, warm-venv, [docker], bare, cold, ...) so a load spike hits every
row of a round, not one row of the whole benchmark:

* bare: `python -c pass` in a subprocess, the same interpreter (what a sandboxed run is compared with);
* cold: `sandbox.run(JOB)`, a fresh bubblewrap sandbox per run;
* warm: a `Pool(workers=1)` of the local backend, one request at a time, each the round trip of `submit().result()`;
* warm venv: the same pool on a virtual environment's interpreter (`Pool(python=VENV)`): by default an empty
  `--system-site-packages` venv made under the temp dir (where a venv's read-only bind lands inside the sandbox's
  scratch /tmp, which is what made the per-job cost grow with the environment); `--python PATH` runs it on yours
  (a venv with numpy, pandas, torch ...);
* docker: `sandbox.run(JOB, backend="docker")`, if Docker answers.

Every sandboxed row runs a HumanEval-sized job (define a function, assert on it, print); bare only starts the
interpreter. Ratios are per round (row / bare of the same round): min (the quiet-machine figure) and median.
Targets (issue #20), at any `--load`: warm p50 <= 0.1x bare, the warm venv row the same (no cost that grows with
the environment), cold p50 <= 1.5x bare; and, quiet (`--load 0`), warm p50 <= 5 ms. `--load N` runs N busy loops
beside it; the machine line says what else was running (the load average before and after).

    python benchmarks/sandbox_latency.py [--runs N] [--load N] [--python PATH] [--no-venv] [--no-docker]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _bench import (
    add_load_option,
    busy_loops,
    byte_compile_checkout,
    interleave,
    load_line,
    machine_line,
    ratios,
    verdict,
)

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

WARM_TARGET_S = 0.005
WARM_RATIO, COLD_RATIO = 0.1, 1.5


def bare() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def checked(result: sandbox.ExecResult) -> None:
    if result.status is not Status.ok or result.stdout != "passed\n":
        raise SystemExit(f"benchmark job failed in the sandbox: {result}")


def make_venv(where: Path) -> str:
    """An empty venv on top of this interpreter's packages, under the temp dir; its bin/python."""
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    return str(venv / "bin" / "python")


def docker_action() -> Callable[[], None] | None:
    try:
        checked(sandbox.run(JOB, backend="docker"))
    except (SandboxError, SystemExit) as exc:
        print(f"docker unavailable: {str(exc)[:200]}", file=sys.stderr)
        return None
    return lambda: checked(sandbox.run(JOB, backend="docker"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40, help="rounds (one run of every row each)")
    parser.add_argument("--python", help="a venv's interpreter (or the venv) for the 'warm venv' row, instead of "
                        "an empty venv made under the temp dir")
    parser.add_argument("--no-venv", action="store_true", help="leave out the 'warm venv' row")
    parser.add_argument("--no-docker", action="store_true", help="leave out the docker row")
    add_load_option(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sandbox-latency-") as scratch, busy_loops(args.load):
        print(machine_line(args.load))
        byte_compile_checkout()  # the cold row's server loads its bytecode, as installed
        venv_python = None if args.no_venv else (args.python or make_venv(Path(scratch)))
        request = ExecRequest(code=JOB)
        pools = {"warm": Pool(workers=1)}
        if venv_python:
            pools["warm venv"] = Pool(workers=1, python=venv_python)
        try:
            actions: dict[str, Callable[[], float | None]] = {
                "bare python -c pass": bare,
                "cold local sandbox": lambda: checked(sandbox.run(JOB)),
            }
            for name, pool in pools.items():
                actions[f"{name} pool (1 worker)"] = lambda pool=pool: checked(pool.submit(request).result())
            docker = None if args.no_docker else docker_action()
            if docker is not None:
                actions["docker"] = docker
            for action in actions.values():  # warm-up: first runs start workers, fill caches
                for _ in range(3):
                    action()
            started = time.perf_counter()
            times = interleave(actions, repeats=args.runs)
            elapsed = time.perf_counter() - started
        finally:
            for pool in pools.values():
                pool.close()
        print(f"{args.runs} interleaved rounds in {elapsed:.1f} s; {load_line()} (after)")
        if venv_python:
            print(f"warm venv: {venv_python}")
        report(times, args.load)


def report(times: dict[str, list[float]], load: int) -> None:
    base = times["bare python -c pass"]
    print(f"{'row':<26}{'p50 ms':>9}{'min ms':>9}{'p95 ms':>9}{'/bare min':>11}{'/bare median':>14}")
    medians: dict[str, float] = {}
    for name, samples in times.items():
        pairs = ratios(samples, base)
        ordered = sorted(samples)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        medians[name] = statistics.median(pairs)
        print(f"{name:<26}{statistics.median(samples) * 1e3:>9.2f}{min(samples) * 1e3:>9.2f}{p95 * 1e3:>9.2f}"
              f"{min(pairs):>10.3f}x{medians[name]:>13.3f}x")
    for name in [n for n in times if n.startswith("warm")]:
        print(verdict(f"{name}: p50 / bare (median of rounds)", medians[name], WARM_RATIO))
        if load == 0:  # the absolute target is the quiet machine's; loaded, the ratio is the target
            print(verdict(f"{name}: p50", statistics.median(times[name]) * 1e3, WARM_TARGET_S * 1e3, " ms"))
    print(verdict("cold local sandbox: p50 / bare (median of rounds)", medians["cold local sandbox"], COLD_RATIO))


if __name__ == "__main__":
    main()
