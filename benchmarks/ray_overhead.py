"""Ray's overhead on one machine: the local sandbox pool vs `--executor ray` (a one-node Ray here), same jobs.

Two workloads, each run alternately A (local pool), B (Ray), A, B, ... with the same sandbox workers:

* HumanEval+ canonical scoring: the canonical solutions of the first --tasks tasks of the HumanEval+ copy
  shipped in evals/data (base + plus inputs, expected outputs computed once beforehand and cached), scored through
  an open runner (the steady state: the runner's start is timed separately);
* PyX synthesis of --programs generated programs (execute, trace, monologue), each run opening its own runner as
  `semcoder data pyx` does.

It prints the machine, kernel and load, each run's seconds, the min and median B/A ratios (target <= 1.15),
and a projection (labelled as one) of wall times on 8 and 64 nodes from the measured per-job cost and overhead.

    python benchmarks/ray_overhead.py [--tasks 164] [--programs 2000] [--repeats 2] [--workers 2] [--load N]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# A throwaway token in the environment, set before Ray is imported (it reads these once per process): Ray 2.60
# would otherwise write one to ~/.ray/auth_token for the one-node Ray it starts.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))

from _bench import add_load_option, busy_loops, load_line, machine_line, ratio_line, verdict  # noqa: E402

from evals._config import EvalConfig  # noqa: E402
from evals._samples import Sample  # noqa: E402
from evals.loaders import load_benchmark  # noqa: E402
from evals.scoring import score_samples  # noqa: E402
from sandbox.executor import ExecutorChoice, open_job_runner  # noqa: E402
from training.data.pyx_pipeline import PyXConfig, run_pyx  # noqa: E402


def eval_run(runner, tasks, samples, config) -> float:
    start = time.perf_counter()
    report = score_samples("humaneval+", tasks, samples, runner, config, show_progress=False)
    seconds = time.perf_counter() - start
    assert report.pass_at_1 == 1.0, report.pass_at_1  # every canonical solution passes, on either executor
    return seconds


def pyx_run(executor: str, programs: int, workers: int, scratch: Path, index: int) -> tuple[float, int]:
    out = scratch / f"pyx-{executor}-{index}"
    config = PyXConfig(out=out, generated=programs, workers=workers, executor=ExecutorChoice(executor=executor))
    start = time.perf_counter()
    stats, _ = run_pyx(config)
    return time.perf_counter() - start, stats.programs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=164)
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    add_load_option(parser)
    args = parser.parse_args()
    with busy_loops(args.load):
        measure(args)


def measure(args: argparse.Namespace) -> None:
    import logging

    import ray

    # One one-node Ray for the whole benchmark (what `ray start --head` gives); each RayRunner joins it.
    ray.init(num_cpus=args.workers, logging_level=logging.WARNING, log_to_driver=False)
    print(f"{machine_line(args.load)}; ray {ray.__version__}")
    print(f"workers: {args.workers} sandbox workers (local pool) vs 1 Ray node x {args.workers} workers\n")

    with tempfile.TemporaryDirectory(prefix="ray-overhead-") as scratch_dir:
        scratch = Path(scratch_dir)
        config = EvalConfig(workers=args.workers, cache_dir=scratch / "expected")
        tasks = load_benchmark("humaneval+")[: args.tasks]
        samples = [Sample(task_id=t.task_id, text=t.program(t.canonical_solution)) for t in tasks]
        times: dict[str, list[float]] = {"local": [], "ray": []}
        start = time.perf_counter()
        with open_job_runner("local", workers=args.workers) as local:
            local_start = time.perf_counter() - start
            eval_run(local, tasks, samples, config)  # expected outputs, computed once and cached
            start = time.perf_counter()
            with open_job_runner("ray", workers=args.workers) as on_ray:
                ray_start = time.perf_counter() - start
                for _ in range(args.repeats):
                    for name, runner in (("local", local), ("ray", on_ray)):
                        times[name].append(eval_run(runner, tasks, samples, config))
                        print(f"  humaneval+ {len(samples)} canonical samples, {name:5s}: {times[name][-1]:7.2f} s",
                              flush=True)
        eval_ratio = statistics.median(b / a for a, b in zip(times["local"], times["ray"], strict=True))
        print(f"{ratio_line('humaneval+ scoring, Ray / local', times['ray'], times['local'])} "
              f"(runner start: local {local_start:.2f} s, ray {ray_start:.2f} s)\n")

        pyx: dict[str, list[float]] = {"local": [], "ray": []}
        kept = {}
        for index in range(args.repeats):
            for name in ("local", "ray"):
                seconds, kept[name] = pyx_run(name, args.programs, args.workers, scratch, index)
                pyx[name].append(seconds)
                print(f"  pyx {args.programs} generated programs ({kept[name]} verified), {name:5s}: "
                      f"{seconds:7.2f} s", flush=True)
        assert kept["local"] == kept["ray"]
        pyx_ratio = statistics.median(b / a for a, b in zip(pyx["local"], pyx["ray"], strict=True))
        print(ratio_line("pyx synthesis, Ray / local", pyx["ray"], pyx["local"]))
        print(verdict("Ray overhead, humaneval+ median", eval_ratio, 1.15))
        print(verdict("Ray overhead, pyx median", pyx_ratio, 1.15))
        print(load_line() + "\n")

    # Per-job cost, in worker-seconds: the local runs' median wall time x workers / jobs.
    eval_cost = statistics.median(times["local"]) * args.workers / len(samples)
    pyx_cost = statistics.median(pyx["local"]) * args.workers / args.programs
    workloads = [
        ("HumanEval+ x 100 samples/task", 164 * 100, eval_cost, eval_ratio),
        ("PyX, 2,000 programs", 2_000, pyx_cost, pyx_ratio),
        ("PyX, 50,000 programs (paper-size)", 50_000, pyx_cost, pyx_ratio),
    ]
    print("PROJECTION (not measured): wall time = jobs x measured cost per job / (nodes x workers per node) x "
          "measured Ray/local ratio;")
    print(f"each node like this one ({args.workers} workers); ignores the driver's own limits, network transfer, "
          "stragglers and node start-up.")
    print(f"{'workload':36s} {'s/job (worker)':>14s} {'1 node local':>13s} {'8 nodes Ray':>12s} {'64 nodes Ray':>13s}")
    for name, jobs, cost, ratio in workloads:
        one = jobs * cost / args.workers
        print(f"{name:36s} {cost:14.3f} {fmt(one):>13s} {fmt(one / 8 * ratio):>12s} {fmt(one / 64 * ratio):>13s}")
    ray.shutdown()


def fmt(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min" if seconds >= 60 \
        else f"{seconds:.0f} s"


if __name__ == "__main__":
    main()
