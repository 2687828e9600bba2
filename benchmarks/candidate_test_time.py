"""Per-candidate test time: our sandboxed TestRunner vs plain `pytest <same tests>` in the same environment.

For each case, side by side in one run:

* plain: `VENV/bin/python -m pytest -q -p no:cacheprovider <the case's test files>` as a subprocess, on a copy
  of the buggy tree, under the case's `test_env` (median of --runs);
* ours: `TestRunner.run(task, [candidate])` on a warm `sandbox.Pool(workers=1, python=VENV)`, where the
  candidate is the original workspace with one editable file changed trivially (a new comment each run, so
  nothing can be reused from an earlier candidate), after the pool has run the original (as the repair loop's
  baseline) and two candidates (median of --runs). The tamper checks and the job protocol are on and per-test
  line coverage is off, as for a repair's candidates (the baseline and a new best are traced; `--coverage`
  traces every run). `(job s)` is the sandbox's own time for the job (from go to exit), `preloaded`
  how many modules the sandbox had imported ahead for the last run (`-`: a driver that does not say).

`sandbox` says how the sandbox ran our jobs (sandbox.ExecResult.warm): `prestarted` (pytest's configuration and
collection were run ahead, on the previous candidate's files, while the loop did other things: here the plain run
between two of ours, plus `--gap` seconds, the time a repair step spends generating the next candidate; `waited`
is how long a job waited for that to finish, part of `ours s`), `declined`, `preloaded` (only the environment
imported ahead) or `cold`.

`--cold` runs ours without a preload (what the warm sandbox buys, against the same code otherwise).
`--phases` adds where our time went (medians, from the driver's own clock): importing pytest (with site-packages),
pytest's configuration and collection (the project's imports), the test run (of it, the tests' own call phases,
per-test coverage tracing included), and the rest of the wall time (the sandbox, the job protocol, the driver's
report, the host's parsing).

Cases: a few real bugs built by benchmarks/realbugs/build.py (`--work`, default /work/realbugs), and a small
synthetic project in a venv made from this interpreter (`--system-site-packages`, so its pytest), which runs
anywhere. `--only synthetic tqdm-4` picks cases.

    python benchmarks/candidate_test_time.py [--runs 5] [--only ...] [--work /work/realbugs]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sandbox  # noqa: E402
from agent.tasks import Task, TestRunner, parse_report, project_task  # noqa: E402

DEFAULT_CASES = ["youtube-dl-26", "tqdm-4", "thefuck-28", "cookiecutter-4"]
CASES_FILE = ROOT / "benchmarks" / "realbugs" / "cases.json"
_COUNTS = re.compile(r"(\d+) (passed|failed|error|errors)\b")

SYNTHETIC_MODULE = '''"""A small library whose tests import a few stdlib packages, as real projects do."""
import argparse
import decimal
import email.parser
import json
import logging
import textwrap
import urllib.parse

log = logging.getLogger(__name__)


def money(text):
    return decimal.Decimal(text).quantize(decimal.Decimal("0.01"))


def query(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def header(raw, name):
    return email.parser.Parser().parsestr(raw).get(name)


def wrap(text, width):
    return textwrap.wrap(text, width)


def roundtrip(value):
    return json.loads(json.dumps(value))


def parser():
    made = argparse.ArgumentParser(prog="calc")
    made.add_argument("--n", type=int, default=0)
    return made


def clamp(value, low, high):
    if value < low:
        return low
    if value > high:
        return low  # the bug
    return value
'''

SYNTHETIC_TESTS = '''import pytest

from calc.core import clamp, header, money, parser, query, roundtrip, wrap


@pytest.mark.parametrize("value", range(40))
def test_clamp_inside(value):
    assert clamp(value, 0, 100) == value


def test_clamp_high():
    assert clamp(150, 0, 100) == 100


def test_money():
    assert str(money("1.005")) == "1.00"


def test_query():
    assert query("http://x/?a=1&b=2") == {"a": "1", "b": "2"}


def test_header():
    assert header("Subject: hi\\n\\nbody", "Subject") == "hi"


def test_wrap():
    assert wrap("a b c d", 3) == ["a b", "c d"]


@pytest.mark.parametrize("value", [1, "x", [1, 2], {"k": None}])
def test_roundtrip(value):
    assert roundtrip(value) == value


def test_parser():
    assert parser().parse_args(["--n", "3"]).n == 3
'''


class Case:
    """What a measurement needs: a tree to copy, its venv, the test selection, the environment, a file to edit."""

    def __init__(self, name: str, tree: Path, venv: Path, tests: list[str], env: dict[str, str], edit: str) -> None:
        self.name, self.tree, self.venv, self.tests, self.env, self.edit = name, tree, venv, tests, env, edit


def real_case(case: dict, work: Path) -> Case | None:
    tree, venv = work / case["id"] / "buggy", work / case["id"] / "venv"
    if not tree.is_dir() or not (venv / "bin" / "python").exists():
        return None
    edit = next((f["file"] for f in case["fixed_functions"] if f["file"].endswith(".py")), None)
    return Case(case["id"], tree, venv, list(case["bugsinpy_test_files"]), dict(case.get("test_env") or {}),
                edit or "")


def synthetic_case(scratch: Path) -> Case:
    tree = scratch / "synthetic-src"
    (tree / "calc").mkdir(parents=True)
    (tree / "tests").mkdir()
    (tree / "calc" / "__init__.py").write_text("")
    (tree / "calc" / "core.py").write_text(SYNTHETIC_MODULE)
    (tree / "tests" / "test_core.py").write_text(SYNTHETIC_TESTS)
    venv = scratch / "synthetic-venv"
    # Links to this interpreter (never a copy), and sees its site-packages: its pytest.
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([str(base if base.exists() else sys.executable), "-m", "venv", "--system-site-packages",
                    "--without-pip", "--symlinks", str(venv)], check=True)
    return Case("synthetic", tree, venv, ["tests/test_core.py"], {"LANG": "C.UTF-8"}, "calc/core.py")


class Plain:
    """`VENV/bin/python -m pytest -q -p no:cacheprovider TESTS` in a copy of the tree, under the case's test_env."""

    def __init__(self, case: Case, copy: Path) -> None:
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(copy.parent / "home"), **case.env}
        Path(self.env["HOME"]).mkdir(exist_ok=True)
        self.command = [str(case.venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        *case.tests]
        self.copy = copy
        self.counts: dict[str, int] = {}

    def run(self) -> float:
        start = time.perf_counter()
        done = subprocess.run(self.command, cwd=self.copy, env=self.env, capture_output=True, text=True, timeout=600)
        seconds = time.perf_counter() - start
        last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        self.counts = {kind.rstrip("s"): int(n) for n, kind in _COUNTS.findall(last)}
        return seconds


def candidate(task: Task, case: Case, number: int) -> dict[str, str]:
    files = dict(task.files)
    files[case.edit] = files[case.edit] + f"\n# candidate {number}\n"
    return files


def measure(case: Case, copy: Path, runs: int, cold: bool = False, traced: bool = False, gap: float = 0.0) -> dict:
    """Plain pytest and our per-candidate run, alternately (the machine's load drifts), each median of `runs` after
    the warm-up: plain's first run (page cache, its .pyc files), our baseline run and two candidates."""
    task = project_task(copy).model_copy(update={"test_paths": case.tests})
    if case.edit not in task.files:
        case.edit = task.editable[0]
    plain = Plain(case, copy)
    plain.run()
    with sandbox.Pool(workers=1, python=str(case.venv)) as pool:
        runner = TestRunner(pool, test_timeout_s=60)

        def submit(files: dict[str, str]):  # what TestRunner.run(task, [files], coverage=False) submits
            return runner._submit(task, files, warm=not cold, coverage=traced)

        runner.run(task, [task.files], baseline=True)  # what the repair loop runs first
        for number in (-2, -1):
            submit(candidate(task, case, number)).result()
        plains, walls, jobs, phases, warmth, waited = [], [], [], [], [], []
        for number in range(1, runs + 1):
            plains.append(plain.run())
            time.sleep(gap)
            start = time.perf_counter()  # what TestRunner.run(task, [files]) does, keeping the driver's record
            result = submit(candidate(task, case, number)).result()
            report = parse_report(result, set(task.editable))
            walls.append(time.perf_counter() - start)
            jobs.append(report.duration_s)
            record = result.records[0] if result.ok and result.records else {}
            phases.append(record.get("phases"))
            warmth.append(result.execution.warm.split(":")[0] or "cold")
            waited.append(float(re.search(r"waited ([0-9.]+) s", result.execution.warm).group(1))
                          if "waited" in result.execution.warm else 0.0)
    counts: dict[str, int] = {}
    for outcome in report.outcomes:
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
    timed = [p for p in phases if p]
    phase = {key: statistics.median(p[key] for p in timed) for key in timed[0]} if timed else {}
    return {"plain_s": statistics.median(plains), "ours_s": statistics.median(walls), "job_s": statistics.median(jobs),
            "plain": plain.counts, "ours": counts, "problem": report.problem,
            "preloaded": record.get("preloaded", "-"), "phases": phase,
            "warm": ",".join(f"{warmth.count(kind)} {kind}" for kind in dict.fromkeys(warmth)),
            "waited_s": statistics.median(waited)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/work/realbugs"), help="benchmarks/realbugs/build.py's --out")
    parser.add_argument("--only", nargs="*", default=[], help="case ids (and/or 'synthetic')")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--phases", action="store_true", help="also say where our time went")
    parser.add_argument("--cold", action="store_true", help="our runs without a preload (every job on a cold child)")
    parser.add_argument("--coverage", action="store_true", help="our runs with per-test line coverage")
    parser.add_argument("--gap", type=float, default=0.0, help="seconds between the plain run and ours (a repair "
                        "step's own time before its next candidate)")
    args = parser.parse_args(argv)
    wanted = args.only or ["synthetic", *DEFAULT_CASES]
    records = {c["id"]: c for c in json.loads(CASES_FILE.read_text(encoding="utf-8"))}
    rows = []
    print(f"{'case':16} {'tests':>5} {'plain pytest s':>14} {'ours s':>7} {'(job s)':>8} {'ratio':>6} "
          f"{'preloaded':>9} {'sandbox':>14} {'waited':>6}  outcomes")
    with tempfile.TemporaryDirectory(prefix="candidate-time-") as scratch_dir:
        scratch = Path(scratch_dir)
        for name in wanted:
            case = synthetic_case(scratch) if name == "synthetic" else (
                real_case(records[name], args.work) if name in records else None)
            if case is None:
                print(f"{name:16} (not built under {args.work}: skipped)")
                continue
            copy = scratch / name / "tree"
            shutil.copytree(case.tree, copy, symlinks=True)
            row = measure(case, copy, args.runs, cold=args.cold, traced=args.coverage, gap=args.gap)
            plain_counts, our_counts = row["plain"], row["ours"]
            same = {k: v for k, v in plain_counts.items() if v} == {
                k: v for k, v in our_counts.items() if k != "skipped"}
            tests = sum(plain_counts.values())
            note = "same as plain" if same else f"plain {plain_counts} vs ours {our_counts}"
            if row["problem"]:
                note += f"; problem: {row['problem'][:120]}"
            ratio = row["ours_s"] / row["plain_s"]
            print(f"{name:16} {tests:>5} {row['plain_s']:>14.3f} {row['ours_s']:>7.3f} {row['job_s']:>8.3f} "
                  f"{ratio:>6.2f} {row['preloaded']!s:>9} {row['warm']:>14} {row['waited_s']:>6.2f}  {note}",
                  flush=True)
            rows.append({"case": name, "tests": tests, "ratio": ratio, **row})
    if args.phases:
        print(f"\n{'case':16} {'ours s':>7} {'import pytest':>13} {'collect':>8} {'run':>6} {'(calls)':>8} {'rest':>6}")
        for row in rows:
            phase = row["phases"]
            if not phase:
                print(f"{row['case']:16} {row['ours_s']:>7.3f}  (the driver does not report its phases)")
                continue
            rest = row["ours_s"] - phase["import_s"] - phase["collect_s"] - phase["run_s"]
            print(f"{row['case']:16} {row['ours_s']:>7.3f} {phase['import_s']:>13.3f} {phase['collect_s']:>8.3f} "
                  f"{phase['run_s']:>6.3f} {phase['calls_s']:>8.3f} {rest:>6.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
