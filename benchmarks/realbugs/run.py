"""Run `semcoder repair` over the real-bug suite and report per case, as a user would run it.

Each case (built by build.py into --work: the buggy tree with the fixed commit's test files, and a venv) is
copied fresh, repaired with `semcoder repair COPY --python VENV [--env NAME=VALUE] -- -o addopts= FAILING_TESTS`
(the bug's tests are the targets, the rest of their files guards against regressions), and judged in the sandbox on the project's own interpreter by the upstream fixed version's tests
of those files: every failing test must pass and every test that passed on the fixed version must still pass
(a missing test is a failure). Localization is the rank of a truly fixed function among the first trace's
suspects. `--model oracle` answers every prompt with the upstream fix of the function it shows
(oracle_server.py): it measures the plumbing, not a model.

    python benchmarks/realbugs/run.py [--model none|oracle] [--only youtube-dl-26 ...] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import sandbox  # noqa: E402
from agent.graph import run_values  # noqa: E402
from agent.persistence import load_task, open_store  # noqa: E402
from agent.tasks import Task, TestRunner  # noqa: E402
from benchmarks.realbugs import oracle  # noqa: E402

MIN_PYTHON = (3, 8)
PYTEST_OPTIONS = ["-o", "addopts="]


def cases(only: list[str], work: Path) -> list[dict]:
    """The suite's records, each as its build wrote it where there is one (`<work>/<id>/case.json`: a CI case's
    `ci` entry, a rebuilt case's own outcomes); with `only`, the cases built under `work` too (ci_cases.py's)."""
    records = {c["id"]: c for c in oracle.load_cases()}
    for built in sorted(work.glob("*/case.json")) if work.is_dir() else []:
        record = json.loads(built.read_text(encoding="utf-8"))
        records[record.get("id", built.parent.name)] = record
    return [c for c in records.values() if c.get("reproduces") and (not only or c["id"] in only)]


def venv_python(work: Path, case: dict) -> tuple[Path, tuple[int, int]]:
    """The case's venv and its Python (from its pyvenv.cfg: what was built, whatever cases.json says)."""
    venv = work / case["id"] / "venv"
    config = (venv / "pyvenv.cfg").read_text() if (venv / "pyvenv.cfg").is_file() else ""
    version = next((line.split("=", 1)[1].strip() for line in config.splitlines()
                    if line.split("=", 1)[0].strip() in ("version", "version_info")), case["python_version"])
    major, minor = (int(x) for x in version.split(".")[:2])
    return venv, (major, minor)


def repair(case: dict, work: Path, scratch: Path, model: str, iterations: int) -> dict:
    if not (work / case["id"] / "buggy").is_dir():
        return {"id": case["id"], "python": "-", "status": "skipped", "why": f"not built under {work}"}
    venv, version = venv_python(work, case)
    row: dict = {"id": case["id"], "python": ".".join(map(str, version))}
    if version < MIN_PYTHON:
        return row | {"status": "skipped", "why": f"built with Python {row['python']} (< 3.8)"}
    copy = scratch / case["id"]
    shutil.copytree(work / case["id"] / "buggy", copy, symlinks=True)
    db = scratch / f"{case['id']}.sqlite"
    command = [sys.executable, "-c", "from agent.cli import main; main()", "repair", "--json", str(copy),
               "--python", str(venv), "--db", str(db), "--max-iterations", str(iterations)]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    server = None
    if model == "oracle":
        from benchmarks.realbugs.oracle_server import MODEL, OracleServer

        server = OracleServer(case).start()
        env["SEMCODER_MODEL_URL"] = server.url + "/v1"
        command += ["--model", f"openai:{MODEL}", "--dialect", "semcoder", "--patcher", "model", "--samples", "1",
                    "--temperature", "0"]
    command += [arg for name, value in sorted(case.get("test_env", {}).items()) for arg in ("--env", f"{name}={value}")]
    # As a user would name them (BugsInPy's run_test.sh): the bug's tests are the targets, the rest of their files
    # guards against regressions. The suite was built under -o addopts= (no coverage plugins in the venvs).
    command += ["--", *PYTEST_OPTIONS, *case["failing_tests"]]
    start = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    finally:
        if server is not None:
            server.stop()
    row["wall_s"] = round(time.monotonic() - start, 1)
    try:
        out = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return row | {"status": "crashed", "why": done.stderr.strip()[-500:]}
    row |= {"status": out["status"], "iterations": out["iterations"], "why": out["stop_reason"][:200]}
    with open_store(db) as store:
        values = run_values(store.checkpointer, out["run_id"]) if out["run_id"] else {}
        task = load_task(values, store.snapshots) if values.get("best") else None
    row["tokens"] = values.get("tokens_used", 0)
    row["own_pct"] = loop_share(values)
    row["own_s"], row["node_s"] = loop_seconds(values)
    row["rank"] = localization_rank(case, values)
    row["judged_fixed"] = judge(case, venv, values, task) if task is not None else False
    return row


def loop_share(values: dict) -> float | None:
    """The loop's own steps as a share of the run's node time: everything but testing (execute, and trace's
    traced run of a new best) and the model (reason): localization, prompts, parsing, splicing, routing, state."""
    own, total = loop_seconds(values)
    return round(100 * own / total, 1) if total else None


def loop_seconds(values: dict) -> tuple[float, float]:
    """(the loop's own seconds, all node seconds) of a run: what loop_share divides."""
    total = sum(entry.get("seconds", 0.0) for entry in values.get("history", []))
    spent = sum(entry.get("seconds", 0.0) for entry in values.get("history", []) if entry.get("node") in ("execute", "reason"))
    tested = sum(entry.get("tested_s", 0.0) for entry in values.get("history", []))  # trace's run of a new best
    return round(total - spent - tested, 3), round(total, 3)


def localization_rank(case: dict, values: dict) -> int | None:
    """1-based rank of the first truly fixed function among the first trace step's suspects (None: absent)."""
    traces = [h for h in values.get("history", []) if h.get("node") == "trace"]
    if not traces:
        return None
    fixed = {(f["file"], f["qualname"]) for f in case["fixed_functions"]}
    for rank, suspect in enumerate(traces[0].get("top_functions", []), start=1):
        if (suspect["file"], suspect["function"]) in fixed:
            return rank
    return None


def judge(case: dict, venv: Path, values: dict, task: Task) -> bool:
    """The upstream fixed version's tests of the bug's files, in the sandbox on the project's interpreter."""
    workspace = {**task.files, **values["best"]["files"]}
    # A parametrized test by its function's id; old pytest's Class::()::test ids are not valid arguments.
    selection = [*PYTEST_OPTIONS, *(t.replace("::()", "") for t in [*case["failing_tests"], *case["regression_tests"]])]
    wanted = {*case.get("failing_test_nodes", case["failing_tests"]), *case["regression_tests"]}  # every case
    with sandbox.Pool(workers=1, python=str(venv)) as pool:
        report = TestRunner(pool, test_timeout_s=60).run(
            task.model_copy(update={"test_paths": selection, "targets": []}), [workspace])[0]
    # Old pytest names a class's tests Class::()::test; cases.json has them either way.
    passing = {test_id.replace("::()", "") for test_id in report.passing_ids()}
    return {test_id.replace("::()", "") for test_id in wanted} <= passing and not report.tampered


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/work/realbugs"), help="build.py's --out")
    parser.add_argument("--model", choices=["none", "oracle"], default="none")
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--max-iterations", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'case':18} {'py':7} {'status':10} {'judged':7} {'rank':>4} {'iter':>4} {'wall s':>7} {'tokens':>7} "
          f"{'own %':>6}  why")
    with tempfile.TemporaryDirectory(prefix="realbugs-") as scratch:
        for case in cases(args.only, args.work):
            row = repair(case, args.work, Path(scratch), args.model, args.max_iterations)
            rows.append(row)
            print(f"{row['id']:18} {row['python']:7} {row['status']:10} {row.get('judged_fixed', '-')!s:7} "
                  f"{row.get('rank') or '-':>4} {row.get('iterations', '-'):>4} {row.get('wall_s', '-'):>7} "
                  f"{row.get('tokens', '-'):>7} {row.get('own_pct') or '-':>6}  {row.get('why', '')[:90]}", flush=True)
    ran = [r for r in rows if r["status"] != "skipped"]
    fixed = sum(bool(r.get("judged_fixed")) for r in ran)
    ranks = [r.get("rank") for r in ran]
    print(f"\nmodel {args.model}: {len(rows)} cases that reproduce, {len(ran)} run (Python >= 3.8), "
          f"fixed (judged by the fixed version's tests) {fixed}/{len(ran)}"
          + (f" = {100 * fixed / len(ran):.1f}%" if ran else ""))
    if ran:
        top1 = sum(r == 1 for r in ranks)
        top5 = sum(r is not None and r <= 5 for r in ranks)
        print(f"localization of a truly fixed function: top-1 {top1}/{len(ran)}, top-5 {top5}/{len(ran)}")
        for project in sorted({r["id"].rsplit("-", 1)[0] for r in ran}):
            mine = [r for r in ran if r["id"].rsplit("-", 1)[0] == project and r.get("node_s")]
            own, total = sum(r["own_s"] for r in mine), sum(r["node_s"] for r in mine)
            if total:
                print(f"loop's own share of the node time, {project}: {100 * own / total:.1f}% "
                      f"({own:.1f} s of {total:.1f} s over {len(mine)} runs)")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
