"""Tracing overhead on CRUXEval's 800 calls: plain execution vs PySnooper vs our tracer, in one run.

All three run in ONE child process (same interpreter, same loaded modules, programs loaded once), one
program at a time with the three methods interleaved, each timed as the best of --repeat runs:
- plain: eval(call) in the program's namespace;
- pysnooper: the same under `pysnooper.snoop(depth=4)` as a context manager (the call's frame is at
  depth 2, f at 3, f's lambdas/comprehensions at 4), its log text handed to a callable that drops it,
  so no file I/O is charged to it (SemCoder wrote the log to a file);
- ours: sandbox/_tracer_child.py's tracer with default caps, full locals snapshots at every event and
  the row's result serialized to JSON (what the sandboxed child writes back).
Overhead = method total - plain total. The target: ours' overhead <= 1/10 of PySnooper's.
A call is right when its value equals CRUXEval's expected output (compared as values).

    python benchmarks/tracer_overhead.py [--repeat 7] [--data tests/data/cruxeval.jsonl]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_DRIVER = textwrap.dedent(
    r"""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    import _tracer_child as child
    import pysnooper

    rows = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8")]
    repeat = int(sys.argv[3])
    runner = child.RowRunner({}, child.Alarm())
    drop = lambda text: None

    def plain(expression, namespace, filename):
        return eval(expression, namespace)

    def snooped(expression, namespace, filename):
        with pysnooper.snoop(output=drop, color=False, depth=4):
            return eval(expression, namespace)

    def ours(expression, namespace, filename):
        result, value = runner.trace_loaded(expression, namespace, filename, "f")
        child.encode_result(result)
        return value

    methods = {"plain": plain, "pysnooper": snooped, "ours": ours}
    totals = dict.fromkeys(methods, 0.0)
    right = dict.fromkeys(methods, 0)
    events = 0
    for index, row in enumerate(rows):
        filename = f"<cruxeval-{index}>"
        namespace = {"__name__": "traced_program"}
        exec(compile(row["code"], filename, "exec"), namespace)
        expression = compile(f"f({row['input']})", "<call>", "eval")
        expected = eval(row["output"])
        for name, method in methods.items():
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                try:
                    value = method(expression, namespace, filename)
                except Exception as exc:
                    value = exc
                best = min(best, time.perf_counter() - start)
            totals[name] += best
            right[name] += value == expected
        events += len(runner.trace_loaded(expression, namespace, filename)[0]["events"])
    print(json.dumps({"totals": totals, "right": right, "rows": len(rows), "events": events,
                      "python": sys.version.split()[0]}))
    """
)


def measure(data: Path, repeat: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(ROOT / "sandbox"), str(data), str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(result: dict) -> str:
    totals, right, rows = result["totals"], result["right"], result["rows"]
    plain = totals["plain"]
    lines = [
        f"CRUXEval calls: {rows}, traced events (ours): {result['events']}, Python {result['python']}",
        "| method | total (s) | per call (us) | overhead vs plain (s) | x plain | right results |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("plain", "pysnooper", "ours"):
        total = totals[name]
        lines.append(
            f"| {name} | {total:.4f} | {total / rows * 1e6:.1f} | {total - plain:.4f} | "
            f"{total / plain:.1f} | {right[name]}/{rows} |"
        )
    ratio = (totals["ours"] - plain) / (totals["pysnooper"] - plain)
    lines.append(f"overhead ratio (ours - plain) / (pysnooper - plain) = {ratio:.3f}  (target <= 0.100)")
    lines.append(f"total-time ratio ours / pysnooper = {totals['ours'] / totals['pysnooper']:.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="Runs per call and method; the best counts.")
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "cruxeval.jsonl")
    args = parser.parse_args()
    print(table(measure(args.data, args.repeat)))


if __name__ == "__main__":
    main()
