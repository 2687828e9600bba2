"""Load on `semcoder serve`: N concurrent function-level repairs (mutation patcher) through HTTP + SSE.

    python benchmarks/api_load.py                 # 50 concurrent repairs, 3 solo baselines
    python benchmarks/api_load.py --runs 10 --solo 1

Starts a real server on a free loopback port with a fresh SQLite database, submits every repair at once,
follows each run's event stream to its `done` event and prints end-to-end latency (POST to `done`):
alone (one repair at a time) and under load, side by side, plus whether every run finished (none lost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "load-benchmark-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# Small real bugs the mutation engine can fix: (buggy code, tests).
TASKS = [
    ("def add(a, b):\n    return a - b\n",
     "from solution import add\n\ndef test_add():\n    assert add(2, 3) == 5\n\ndef test_zero():\n    assert add(0, 0) == 0\n"),
    ("def is_adult(age):\n    return age > 18\n",
     "from solution import is_adult\n\ndef test_18():\n    assert is_adult(18)\n\ndef test_10():\n    assert not is_adult(10)\n"),
    ("def last(items):\n    return items[len(items) - 2]\n",
     "from solution import last\n\ndef test_last():\n    assert last([1, 2, 3]) == 3\n\ndef test_one():\n    assert last([7]) == 7\n"),
    ("def count_up(n):\n    return list(range(1, n))\n",
     "from solution import count_up\n\ndef test_three():\n    assert count_up(3) == [1, 2, 3]\n"),
    ("def both(a, b):\n    return a or b\n",
     "from solution import both\n\ndef test_tf():\n    assert both(True, False) is False\n\ndef test_tt():\n    assert both(True, True) is True\n"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50, help="Concurrent repairs.")
    parser.add_argument("--solo", type=int, default=3, help="Repairs run one at a time first (the baseline).")
    parser.add_argument("--max-concurrent-runs", type=int, default=4, help="The server's concurrency bound.")
    parser.add_argument("--sandbox-workers", type=int, default=2, help="The server's shared sandbox processes.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="semcoder-api-load-") as scratch:
        server, url = start_server(Path(scratch), args.max_concurrent_runs, args.sandbox_workers)
        try:
            solo, load, outcome = asyncio.run(measure(url, args.solo, args.runs))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    report(args, solo, load, outcome)
    if outcome["lost"] or outcome["not_fixed"]:
        sys.exit(1)


def start_server(scratch: Path, concurrency: int, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SEMCODER_API_TOKEN": TOKEN, "SEMCODER_MAX_CONCURRENT_RUNS": str(concurrency),
           "SEMCODER_SANDBOX_WORKERS": str(workers)}
    log = (scratch / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-c", "from agent.cli import main; main()", "serve", "--port", str(port),
                               "--db-url", f"sqlite:///{scratch / 'runs.sqlite'}", "--log-level", "warning"],
                              cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit(f"the server did not start; log:\n{(scratch / 'server.log').read_text()}")


async def measure(url: str, solo_runs: int, runs: int) -> tuple[list[float], list[float], dict[str, int]]:
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=httpx.Timeout(30, read=600)) as client:
        solo = [(await repair(client, index))[0] for index in range(solo_runs)]
        started = time.monotonic()
        results = await asyncio.gather(*(repair(client, index) for index in range(runs)))
        wall = time.monotonic() - started
        ids = [run_id for _, run_id, _ in results]
        final = [(await client.get(f"/v1/repairs/{run_id}")).json()["status"] for run_id in ids]
        listed = {r["id"] for r in (await client.get("/v1/repairs", params={"limit": 1000})).json()["repairs"]}
    outcome = {"submitted": runs, "done_events": sum(status is not None for _, _, status in results),
               "fixed": final.count("fixed"), "not_fixed": sum(s != "fixed" for s in final),
               "lost": len(set(ids) - listed) + sum(status is None for _, _, status in results),
               "wall_ms": round(wall * 1000)}
    return solo, [latency for latency, _, _ in results], outcome


async def repair(client: httpx.AsyncClient, index: int) -> tuple[float, str, str | None]:
    """POST one repair and follow its SSE stream to `done`: (seconds, run id, final status or None)."""
    code, tests = TASKS[index % len(TASKS)]
    started = time.monotonic()
    response = await client.post("/v1/repairs", json={"code": code, "tests": tests, "model": "none",
                                                      "patcher": "mutation"})
    response.raise_for_status()
    run_id = response.json()["id"]
    status, event = None, ""
    async with client.stream("GET", f"/v1/repairs/{run_id}/events") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "done":
                status = json.loads(line.removeprefix("data: "))["status"]
    return time.monotonic() - started, run_id, status


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(args: argparse.Namespace, solo: list[float], load: list[float], outcome: dict[str, int]) -> None:
    print(f"semcoder serve load: {args.runs} concurrent function-level repairs, mutation patcher, "
          f"max_concurrent_runs={args.max_concurrent_runs}, sandbox_workers={args.sandbox_workers}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'case':<24}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'p50 vs solo':>13}")
    base = statistics.median(solo) if solo else float("nan")
    for name, values in (("solo (one at a time)", solo), (f"{args.runs} concurrent", load)):
        if values:
            p50 = percentile(values, 0.5)
            print(f"{name:<24}{len(values):>5}{p50 * 1000:>10.0f}{percentile(values, 0.95) * 1000:>10.0f}"
                  f"{max(values) * 1000:>10.0f}{p50 / base:>12.1f}x")
    print("outcome: " + ", ".join(f"{key}={value}" for key, value in outcome.items()))


if __name__ == "__main__":
    main()
