"""Tracing overhead on CRUXEval's 800 calls: our tracer through the user's path vs PySnooper as SemCoder used it.

Three sides, each on the 800 rows and on one trivial row (its start-up), interleaved round by round:
- ours, two user paths:
  - cli: `semcoder trace-batch ROWS --json > FILE`, the whole process (the CLI, a cold sandbox, the traced
    child, every row's JSON line written), optionally `--python PY` (the traced child on that interpreter:
    sys.monitoring on 3.12+);
  - library: what a program that traces batches does (training/data/tracing.py): rows read from the JSONL,
    `sandbox.tracer.trace_batch_json(rows, runner=pool)` on a warm `sandbox.Pool`, the lines written to a file,
    timed in this process (the pool started beforehand, as such a program starts it once);
- pysnooper: one process calling each CRUXEval function as SemCoder's code did (ARiSE-Lab/SemCoder,
  experiments/trace_evalplus.py): the program is a real source file holding the code and a `check_ans_7d1()`
  that makes the call, decorated with `@pysnooper.snoop(LOGFILE, color=False, depth=2)`: one log file per
  call, written by PySnooper as it traces. (SemCoder also started one interpreter per call; here all calls share
  one, which only makes PySnooper cheaper.) depth=2 traces check_ans_7d1 and f, not f's own comprehensions and
  lambdas, which ours does trace: again the cheaper side is PySnooper's;
- plain: the same process as pysnooper's without the decorator (load each program, make the call).
Start-up is subtracted the same way on every side: a side's cost in a round is its 800-row time less its median
1-row time over all rounds. Start-up is a fixed cost, and the 800-row run pays it once, as it comes: a median
800-row time less the median start-up is what the 800 rows add. (Until 2026-12-04 the judged figure subtracted the
*least* 1-row time, which charges a side the spread of its start-up on top of its rows: for ours, whose start-up
is the largest (a cold sandbox, pydantic), that spread was as large as the overhead being measured. That figure is
still printed, "least start-up subtracted", not judged. Per-round differences are not used: the start-up's spread
from one run to the next would be the figure.) The cli figures are whole processes (pysnooper's and plain's too);
the library figures start the clock after start-up (pysnooper's and plain's driver times its own loop, after its
imports). Overhead = cost - plain's cost (loading and calling the 800 programs). Each path reports the per-round
ratio ours / pysnooper overhead, min and median; the target is median <= 0.05x, at --load 0 and --load 4.
The default is 21 rounds (7 until 2026-12-05): on this project's 2-core VM, three 7-round runs at --load 0 in one
session gave cli medians of 0.062x, 0.046x and a library median of 0.068x where a 21-round run gave 0.028x and
0.037x, and a 30-round whole-process A/B of two commits found their cli costs within a millisecond. The ours
side's overhead is 30-60 ms against PySnooper's 900: a median of 7 rounds moves by more than the 5% it is judged at.

The in-process row (the figure the user path used to be judged by, kept for comparison and labelled so):
our tracer's own code and PySnooper (logging to a callable, no files) in ONE process, each call the best of
--in-process-repeat runs; it leaves out everything the user pays for besides the tracing itself.

    python benchmarks/tracer_overhead.py [--rounds 21] [--load N] [--python PY] [--data tests/data/cruxeval.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import (
    add_load_option,
    busy_loops_apart,
    byte_compile_checkout,
    interleave,
    load_line,
    machine_line,
    ratio_line,
    verdict,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's sandbox/, as the cli side's PYTHONPATH has it

TARGET = 0.05
TRIVIAL = {"code": "def f():\n    return 0\n", "call": "f()"}
SIZES = ("all", "startup")

# SemCoder's way (experiments/trace_evalplus.py, gen_failures): the program file is the code plus a checker that
# makes the call; PySnooper's log goes to a file. The checker returns instead of asserting: the value is not
# judged here. The loop's own time is printed last (the library path's figure: its start-up is the imports).
_SNOOP_DRIVER = textwrap.dedent(
    r"""
    import json, sys, time
    rows_file, workdir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "snoop":
        import pysnooper
    start = time.perf_counter()
    for index, line in enumerate(open(rows_file, encoding="utf-8")):
        row = json.loads(line)
        path = f"{workdir}/prog_{index}.py"  # written beforehand, byte for byte this source
        source = row["code"] + "\n\n\ndef check_ans_7d1():\n    retv = " + row["call"] + "\n    return retv\n"
        namespace = {"__name__": "traced_program"}
        try:
            exec(compile(source, path, "exec"), namespace)
            check = namespace["check_ans_7d1"]
            if mode == "snoop":
                check = pysnooper.snoop(f"{workdir}/trace_{index}.log", color=False, depth=2)(check)
            check()
        except Exception:
            pass
    print(time.perf_counter() - start)
    """
)


def _write_rows(rows: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _program(row: dict) -> str:
    return row["code"] + "\n\n\ndef check_ans_7d1():\n    retv = " + row["call"] + "\n    return retv\n"


def _snoop_workdir(rows: list[dict], path: Path) -> None:
    """The program files, written once (SemCoder wrote them too, but not as part of tracing)."""
    path.mkdir()
    for index, row in enumerate(rows):
        (path / f"prog_{index}.py").write_text(_program(row), encoding="utf-8")


def _timed(command: list[str], stdout: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, str]:
    """The process's wall time and what it printed (stdout to a file when one is given)."""
    start = time.perf_counter()
    with open(stdout, "w", encoding="utf-8") if stdout else open(os.devnull, "w", encoding="utf-8") as sink:
        done = subprocess.run(command, stdout=sink if stdout else subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stdout or ""


class UserPath:
    """The sides' runs on files made once. Each run records (800-row, 1-row) times per figure it yields."""

    def __init__(self, rows: list[dict], tmp: Path, python: str | None, pool) -> None:
        self.tmp = tmp
        self.rows = {"all": tmp / "rows.jsonl", "startup": tmp / "trivial.jsonl"}
        _write_rows(rows, self.rows["all"])
        _write_rows([TRIVIAL], self.rows["startup"])
        self.workdirs = {"all": tmp / "snoop_all", "startup": tmp / "snoop_startup"}
        _snoop_workdir(rows, self.workdirs["all"])
        _snoop_workdir([TRIVIAL], self.workdirs["startup"])
        self.python = python
        self.pool = pool
        # PySnooper and the plain driver run on the traced interpreter: the same one as ours' traced child.
        self.snoop_python = python or sys.executable
        self.snoop_env = _pysnooper_env(self.snoop_python)
        # `python -m agent.cli` is the `semcoder` console script without the launcher, on this checkout's code (its
        # bytecode as installed: _bench.byte_compile_checkout).
        self.ours_env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                                os.environ.get("PYTHONPATH")]))}
        byte_compile_checkout()
        self.reset()

    def reset(self) -> None:
        self.times: dict[str, dict[str, list[float]]] = {}

    def _record(self, figure: str, size: str, seconds: float) -> None:
        self.times.setdefault(figure, {"all": [], "startup": []})[size].append(seconds)

    def ours_cli(self) -> float:
        for size in SIZES:
            argv = [sys.executable, "-m", "agent.cli", "trace-batch", str(self.rows[size]), "--json"]
            if self.python:
                argv += ["--python", self.python]
            self._record("ours cli", size, _timed(argv, self.tmp / f"ours_{size}.jsonl", self.ours_env)[0])
        return 0.0

    def ours_library(self) -> float:
        from sandbox.tracer import TraceRow, trace_batch_json

        for size in SIZES:
            start = time.perf_counter()
            with open(self.rows[size], encoding="utf-8") as source:
                rows = [TraceRow.model_validate_json(line) for line in source]
            lines = trace_batch_json(rows, runner=self.pool)
            with open(self.tmp / f"library_{size}.jsonl", "w", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
            self._record("ours library", size, time.perf_counter() - start)
        return 0.0

    def pysnooper(self) -> float:
        return self._driver("pysnooper", "snoop")

    def plain(self) -> float:
        return self._driver("plain", "plain")

    def _driver(self, side: str, mode: str) -> float:
        for size in SIZES:
            # SemCoder removed the log before each run (PySnooper appends); not part of the timed run.
            for log in self.workdirs[size].glob("trace_*.log"):
                log.unlink()
            argv = [self.snoop_python, "-c", _SNOOP_DRIVER, str(self.rows[size]), str(self.workdirs[size]), mode]
            wall, printed = _timed(argv, env=self.snoop_env)
            self._record(f"{side} cli", size, wall)
            self._record(f"{side} library", size, float(printed.split()[-1]))
        return 0.0

    def costs(self, figure: str, startup=statistics.median) -> list[float]:
        """Each round's 800-row time less the figure's median (or `startup`'s) 1-row time."""
        runs = self.times[figure]
        return [t - startup(runs["startup"]) for t in runs["all"]]


def _pysnooper_env(python: str) -> dict[str, str]:
    """An environment in which `python` imports the PySnooper installed here (pure Python) if it has none."""
    env = dict(os.environ)
    if subprocess.run([python, "-c", "import pysnooper"], capture_output=True, check=False).returncode == 0:
        return env
    import pysnooper

    shelf = Path(tempfile.mkdtemp(prefix="pysnooper-shelf-"))
    shutil.copytree(Path(pysnooper.__file__).parent, shelf / "pysnooper")
    env["PYTHONPATH"] = str(shelf)
    return env


def user_path(rows: list[dict], rounds: int, python: str | None) -> list[str]:
    from sandbox import Pool

    with tempfile.TemporaryDirectory(prefix="tracer-overhead-") as tmp, Pool(workers=1, python=python) as pool:
        sides = UserPath(rows, Path(tmp), python, pool)
        actions = {"ours cli": sides.ours_cli, "ours library": sides.ours_library, "pysnooper": sides.pysnooper,
                   "plain": sides.plain}
        interleave(actions, 1)  # warm-up: the page cache, the interpreters' .pyc files, the pool's worker
        sides.reset()
        interleave(actions, rounds)
        check = _check_output(Path(tmp) / "ours_all.jsonl", Path(tmp) / "library_all.jsonl", rows)
    lines = [f"user path: {len(rows)} CRUXEval calls, {rounds} interleaved rounds; traced interpreter: "
             f"{python or sys.executable}"]
    for path in ("cli", "library"):
        plain = sides.costs(f"plain {path}")
        ours = [a - p for a, p in zip(sides.costs(f"ours {path}"), plain, strict=True)]
        snoop = [a - p for a, p in zip(sides.costs(f"pysnooper {path}"), plain, strict=True)]
        lines += [
            "",
            f"{path} path:",
            "| side | start-up min (s) | start-up median (s) | cost min (s) | cost median (s) | overhead median (s) "
            "| per call (us) |",
            "|---|---|---|---|---|---|---|",
        ]
        for side, overheads in (("ours", ours), ("pysnooper", snoop), ("plain", None)):
            figure = f"{side} {path}"
            cost, startup = sides.costs(figure), sides.times[figure]["startup"]
            over = statistics.median(overheads) if overheads is not None else 0.0
            lines.append(f"| {_LABELS[side][path]} | {min(startup):.3f} | {statistics.median(startup):.3f} | "
                         f"{min(cost):.3f} | {statistics.median(cost):.3f} | {over:.3f} | "
                         f"{over / len(rows) * 1e6:.0f} |")
        lines.append(ratio_line(f"{path} overhead ours / pysnooper", ours, snoop))
        median = statistics.median(a / b for a, b in zip(ours, snoop, strict=True))
        lines.append(verdict(f"{path} target (median)", median, TARGET))
        plain_l = sides.costs(f"plain {path}", min)
        ours_l = [a - p for a, p in zip(sides.costs(f"ours {path}", min), plain_l, strict=True)]
        snoop_l = [a - p for a, p in zip(sides.costs(f"pysnooper {path}", min), plain_l, strict=True)]
        lines.append(ratio_line(f"{path} overhead ours / pysnooper, least start-up subtracted (not judged; the judged "
                                "figure until 2026-12-04)", ours_l, snoop_l))
    lines.append(check)
    return lines


_LABELS = {
    "ours": {"cli": "ours: semcoder trace-batch --json > file", "library": "ours: trace_batch_json on a warm Pool"},
    "pysnooper": {"cli": "pysnooper: a log file per call (SemCoder)", "library": "pysnooper: the same, its loop"},
    "plain": {"cli": "plain: load and call", "library": "plain: the same, its loop"},
}


def _check_output(cli: Path, library: Path, rows: list[dict]) -> str:
    out = cli.read_text(encoding="utf-8").splitlines()
    failed = sum(json.loads(line)["exception"] is not None for line in out)
    same = len(library.read_text(encoding="utf-8").splitlines()) == len(out)
    return f"ours' output: {len(out)} lines for {len(rows)} rows ({failed} with an exception); library: " \
           f"{'the same number of lines' if same else 'OTHER LINES'}"


_IN_PROCESS_DRIVER = textwrap.dedent(
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
    for index, row in enumerate(rows):
        filename = f"<cruxeval-{index}>"
        runner.prepare(filename)  # as RowRunner.run does: the row that loads is not foreign code (sys.monitoring)
        namespace = {"__name__": "traced_program"}
        exec(compile(row["code"], filename, "exec"), namespace)
        expression = compile(row["call"], "<call>", "eval")
        for name, method in methods.items():
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                try:
                    method(expression, namespace, filename)
                except Exception:
                    pass
                best = min(best, time.perf_counter() - start)
            totals[name] += best
    print(json.dumps({"totals": totals, "python": sys.version.split()[0]}))
    """
)


def in_process(rows: list[dict], repeat: int, python: str | None) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="tracer-overhead-") as tmp:
        data = Path(tmp) / "rows.jsonl"
        _write_rows(rows, data)
        interpreter = python or sys.executable
        done = subprocess.run([interpreter, "-c", _IN_PROCESS_DRIVER, str(ROOT / "sandbox"), str(data), str(repeat)],
                              capture_output=True, text=True, env=_pysnooper_env(interpreter), check=False)
    if done.returncode != 0:
        raise SystemExit(f"in-process benchmark failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    totals = result["totals"]
    plain = totals["plain"]
    ratio = (totals["ours"] - plain) / (totals["pysnooper"] - plain)
    return [
        f"in-process (not the user path: tracer code only, PySnooper to a callable, best of {repeat}; "
        f"Python {result['python']}):",
        "| method | total (s) | per call (us) |",
        "|---|---|---|",
        *(f"| {name} | {totals[name]:.4f} | {totals[name] / len(rows) * 1e6:.1f} |"
          for name in ("plain", "pysnooper", "ours")),
        f"in-process overhead ratio ours / pysnooper = {ratio:.3f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="Interleaved rounds of the user path.")
    parser.add_argument("--in-process-repeat", type=int, default=3, help="Runs per call in the in-process row.")
    parser.add_argument("--python", default=None, help="The traced interpreter (ours: trace-batch --python).")
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "cruxeval.jsonl")
    add_load_option(parser)
    args = parser.parse_args()
    rows = [{"code": r["code"], "call": f"f({r['input']})"}
            for r in map(json.loads, args.data.read_text(encoding="utf-8").splitlines())]
    # Loops in sessions of their own: ours' traced child runs in the sandbox's own session (_bench says why).
    with busy_loops_apart(args.load):
        print(machine_line(args.load))
        for line in user_path(rows, args.rounds, args.python):
            print(line)
        for line in in_process(rows, args.in_process_repeat, args.python):
            print(line)
        print(f"after: {load_line()}")


if __name__ == "__main__":
    main()
