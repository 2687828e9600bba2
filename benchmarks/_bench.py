"""What every benchmark shares: the machine line, `--load N`, interleaved pairs, min/median ratios.

A figure measured on a shared machine means little unless it says what the machine was doing. So every
benchmark prints the machine, the kernel and the load average before and after, can put N busy loops beside
itself on purpose (`--load N`: the loaded figure is then measured, not suffered), runs its pairs interleaved
(A, B, A, B ...: a load spike hits both sides of a pair, not one side of the whole run), and reports the min
and the median of the per-pair ratios (the min is the quiet-machine figure, the median the typical one).

    from _bench import add_load_option, machine_line, busy_loops, interleave, ratio_line

    parser = argparse.ArgumentParser(); add_load_option(parser); args = parser.parse_args()
    with busy_loops(args.load):
        print(machine_line())
        times = interleave({"ours": run_ours, "theirs": run_theirs}, repeats=5)
        print(ratio_line("ours / theirs", times["ours"], times["theirs"]))
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agent", "sandbox", "evals", "training")


def byte_compile_checkout() -> None:
    """The checkout's bytecode, as an installed package has it: pip byte-compiles what it installs (PySnooper, EvalPlus
    and every other package here included), while an editable checkout under PYTHONDONTWRITEBYTECODE would compile
    every module at every start, and every cold sandbox its fork server. The files go where Python keeps them, the
    packages' __pycache__ (ignored by git)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(ROOT / package) for package in PACKAGES)],
                   check=True, capture_output=True)


def add_load_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="run N busy loops (one process each) beside the benchmark, to measure it loaded")


def _spin() -> None:
    # A pure-Python busy loop: what a CPU hog (a test suite, a compile) does to the scheduler.
    while True:
        pass


def _spin_apart() -> None:
    os.setsid()  # a session of its own: under autogroup scheduling, a scheduling group of its own
    _spin()


@contextlib.contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """`count` busy processes for the duration of the block; killed on the way out, whatever happens."""
    with _hogs(count, _spin):
        yield


@contextlib.contextmanager
def busy_loops_apart(count: int) -> Iterator[None]:
    """busy_loops, each loop in a session of its own: for a benchmark with a sandboxed side.

    With the kernel's autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled), CPU time is shared between
    sessions first. busy_loops' loops share the benchmark's session, so against a sandbox (bwrap --new-session
    puts it in a session of its own) all of them weigh like one program: the sandboxed side runs nearly unloaded
    while the benchmark's own processes share their session's part with every loop. Loops in sessions of their
    own load every side alike, as N programs started elsewhere would.
    """
    with _hogs(count, _spin_apart):
        yield


@contextlib.contextmanager
def _hogs(count: int, target: Callable[[], None]) -> Iterator[None]:
    context = multiprocessing.get_context("fork")
    hogs = [context.Process(target=target, daemon=True) for _ in range(count)]
    for hog in hogs:
        hog.start()
    try:
        if hogs:
            time.sleep(1.0)  # let the load average start to show them before the first measurement
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.join()


def machine_line(load: int | None = None) -> str:
    """CPU model, cores, memory, kernel, Python and the load average now (and the `--load` asked for)."""
    cpuinfo = Path("/proc/cpuinfo")
    cpu = platform.processor() or "unknown CPU"
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    meminfo = Path("/proc/meminfo")
    memory = f", {int(meminfo.read_text().split()[1]) / 2**20:.0f} GiB" if meminfo.exists() else ""
    asked = f"; --load {load}" if load is not None else ""
    return (f"machine: {cpu}, {os.cpu_count()} cores{memory}; kernel {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}; {load_line()}{asked}")


def load_line() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def interleave(actions: dict[str, Callable[[], float | None]], repeats: int) -> dict[str, list[float]]:
    """Run the actions in turn, `repeats` rounds (A, B, A, B ...); seconds per run, per action.

    An action may return its own measurement (seconds), e.g. when its set-up must not count; otherwise the
    call is timed."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            start = time.perf_counter()
            measured = action()
            times[name].append(measured if measured is not None else time.perf_counter() - start)
    return times


def ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def ratio_line(label: str, numerator: list[float], denominator: list[float]) -> str:
    pairs = ratios(numerator, denominator)
    return f"{label}: min {min(pairs):.3f}x, median {statistics.median(pairs):.3f}x over {len(pairs)} pairs"


def verdict(label: str, value: float, target: float, unit: str = "x") -> str:
    """`label: MET (0.04x <= 0.1x)` or MISSED; the line a closing note quotes."""
    state = "MET" if value <= target else "MISSED"
    return f"{label}: {state} ({value:.3g}{unit} <= {target:g}{unit} is the target)"
