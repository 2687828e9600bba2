"""Docker backend latency with and without spare containers, side by side in one run.

Rows: `DockerBackend(keep_spares=False)` (create, attach, start, run, remove per request) and the
default `keep_spares=True` (the next container starts while a request runs), each running the same
HumanEval-sized job sequentially, as the agent's loop does, interleaved so that machine load hits both.
Target: spares cut p50 latency by >= 1.3x.

    python benchmarks/docker_spares.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from sandbox import ExecRequest, SandboxError, Status
from sandbox._docker import DockerBackend

JOB = """
def has_close_elements(numbers, threshold):
    return any(i != j and abs(a - b) < threshold for i, a in enumerate(numbers) for j, b in enumerate(numbers))

assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)
print("passed")
"""


def one_run(backend: DockerBackend) -> float:
    started = time.perf_counter()
    result = backend.execute(ExecRequest(code=JOB))
    if result.status is not Status.ok:
        raise SystemExit(f"the job failed: {result}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    try:
        backends = {"cold (keep_spares=False)": DockerBackend(keep_spares=False), "spares (default)": DockerBackend()}
    except SandboxError as exc:
        raise SystemExit(f"Docker unavailable: {exc}") from exc
    samples: dict[str, list[float]] = {name: [] for name in backends}
    try:
        for backend in backends.values():
            one_run(backend)  # warm-up: the first spare
        for _ in range(args.runs):
            for name, backend in backends.items():
                samples[name].append(one_run(backend))
    finally:
        for backend in backends.values():
            backend.close()
    cold_p50 = statistics.median(samples["cold (keep_spares=False)"])
    print(f"{'backend':<26} {'runs':>5} {'p50 ms':>8} {'p90 ms':>8} {'speed-up':>9}")
    for name, times in samples.items():
        p50, p90 = statistics.median(times), statistics.quantiles(times, n=10)[-1]
        print(f"{name:<26} {len(times):>5} {p50 * 1000:>8.1f} {p90 * 1000:>8.1f} {cold_p50 / p50:>8.2f}x")


if __name__ == "__main__":
    main()
