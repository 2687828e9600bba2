"""Warm jobs (sandbox.job.Preload): what a preloaded child imported ahead is there, what it must not import never is,
a preload that breaks only means a cold start, and a job cannot touch the child preparing the next one.

Evidence is the job's own view of its process (sys.modules, the runtime's PRELOADED record), never timings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import Job, Limits, Pool, Status
from sandbox.job import Preload, warm_spec

LIMITS = Limits(wall_time_s=60, cpu_time_s=60, memory_mb=512)

# What the job saw before importing anything itself.
PROBE = """import sys
BEFORE = sorted(name for name in ("decimal", "fractions", "calc", "const", "crashy") if name in sys.modules)

def main(data, channel):
    import _semcoder_job
    record = {"before": BEFORE, "preloaded": (_semcoder_job.PRELOADED or {}).get("modules")}
    if data:
        import calc
        import const
        import lib
        record["values"] = [calc.VALUE, const.VALUE, lib.TOTAL]
        from importlib import _bootstrap_external
        cells = _bootstrap_external.SourceLoader.source_to_code.__closure__ or ()
        cache = next((c.cell_contents for c in cells if isinstance(c.cell_contents, dict)), {})
        record["cached"] = sorted(os.path.basename(path) for path in cache)
    channel.send(record)
"""
PROBE = "import os\n" + PROBE


def _records(pool: Pool, jobs: list[Job]) -> list[dict]:
    results = [pool.submit_job(job).result() for job in jobs]  # one after another: each may prepare the next
    assert all(r.ok for r in results), [r.problem for r in results]
    return [r.records[0] for r in results]


def test_a_preloaded_child_has_the_modules_before_the_job_imports_them() -> None:
    job = Job(program=PROBE, preload=Preload(modules=["decimal", "no_such_module_anywhere"]), limits=LIMITS)
    with Pool(workers=1) as pool:
        first, *later = _records(pool, [job] * 4)
    assert first == {"before": [], "preloaded": None}  # the first job with a preload runs cold: it sets the spec
    for record in later:
        assert record["before"] == ["decimal"]
        assert record["preloaded"] == ["decimal"]  # a module that does not import is left to the job


def test_a_job_without_the_same_preload_gets_a_cold_child() -> None:
    warm = Job(program=PROBE, preload=Preload(modules=["decimal"]), limits=LIMITS)
    other = Job(program=PROBE, preload=Preload(modules=["fractions"]), limits=LIMITS)
    with Pool(workers=1) as pool:
        records = _records(pool, [warm, warm, Job(program=PROBE, limits=LIMITS), warm, other,
                                  warm.model_copy(update={"limits": Limits(wall_time_s=50, cpu_time_s=60,
                                                                           memory_mb=512)})])
    assert [r["preloaded"] for r in records] == [None, ["decimal"], None, ["decimal"], None, None]
    assert records[2]["before"] == records[4]["before"] == []


def _workspace(number: int) -> dict[str, str]:
    # lib/: enough files that the first warm child shares its code objects with the next ones (through the server),
    # one of them (lib/m0.py) new in every job.
    library = {f"lib/m{i}.py": f"VALUE = {number if i == 0 else i}\n" for i in range(12)}
    library["lib/__init__.py"] = "from . import " + ", ".join(f"m{i}" for i in range(12)) + "\n" + \
        "TOTAL = " + " + ".join(f"m{i}.VALUE" for i in range(12)) + "\n"
    return {"calc.py": f"VALUE = {number}\n", "const.py": "VALUE = 'same'\n", "pkg/__init__.py": "", **library}


def test_the_job_files_are_never_preloaded_and_only_identical_files_reuse_code() -> None:
    """`calc` is listed to preload and to compile: it is the job's own file, so it is never imported ahead, and
    every job sees its own calc.py (a new value each time), never a previous job's; const.py, byte-identical in
    every job, is the one whose code object a warm child compiled ahead."""
    preload = Preload(modules=["calc", "pkg", "decimal"], compile=["calc.py", "const.py", *_workspace(0)])
    jobs = [Job(program=PROBE, data={"import": True}, files=_workspace(n), preload=preload, limits=LIMITS)
            for n in range(5)]
    assert warm_spec(jobs[0])["data"]["modules"] == ["decimal"]  # names the job's files provide are dropped
    with Pool(workers=1) as pool:
        records = _records(pool, jobs)
    assert [r["values"] for r in records] == [[n, "same", n + sum(range(1, 12))] for n in range(5)]
    for record in records[1:]:
        assert record["before"] == ["decimal"]
        assert {"const.py", "m5.py"} <= set(record["cached"])  # compiled ahead (calc.py too, from the previous...
    # ...but a cached code object is used only for a byte-identical file: every value above is the job's own.


def test_a_job_cannot_signal_the_child_that_prepares_the_next_one() -> None:
    """Each slot of a worker has its own uid: a job that kills everything it may kill leaves the waiting child."""
    killer = PROBE.replace("    channel.send(record)", "    import signal\n    channel.send(record)\n"
                           "    try:\n        os.kill(-1, signal.SIGKILL)\n    except OSError:\n        pass\n")
    job = Job(program=killer, preload=Preload(modules=["decimal"]), limits=LIMITS)
    with Pool(workers=1) as pool:
        results = [pool.submit_job(job).result() for _ in range(4)]
    # os.kill(-1) ends the job itself after its report: the report is complete, and the next job is still warm.
    assert all(r.ended for r in results), [r.problem for r in results]
    assert [r.records[0]["preloaded"] for r in results] == [None, ["decimal"], ["decimal"], ["decimal"]]


@pytest.fixture(scope="module")
def venv_with_bad_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv (linked to this interpreter) whose site-packages has modules that crash, or exit, as they import."""
    venv = tmp_path_factory.mktemp("env") / "venv"
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([str(base if base.exists() else sys.executable), "-m", "venv", "--without-pip", "--symlinks",
                    str(venv)], check=True, timeout=120)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "crashy.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    (site / "quitter.py").write_text("import os\nos._exit(3)\n")
    (site / "raiser.py").write_text("raise RuntimeError('not today')\n")
    return venv


@pytest.mark.parametrize("module", ["crashy", "quitter"])
def test_a_preload_that_crashes_degrades_to_cold_runs(venv_with_bad_modules: Path, module: str) -> None:
    job = Job(program=PROBE, preload=Preload(modules=["decimal", module]), limits=LIMITS)
    with Pool(workers=1, python=str(venv_with_bad_modules)) as pool:
        records = _records(pool, [job] * 4)
    assert [r["preloaded"] for r in records] == [None] * 4
    assert all(r["before"] == [] for r in records)


def test_a_module_that_fails_to_import_is_left_to_the_job(venv_with_bad_modules: Path) -> None:
    job = Job(program=PROBE, preload=Preload(modules=["raiser", "decimal"]), limits=LIMITS)
    with Pool(workers=1, python=str(venv_with_bad_modules)) as pool:
        records = _records(pool, [job] * 3)
    assert [r["preloaded"] for r in records] == [None, ["decimal"], ["decimal"]]


def test_a_preload_that_imports_a_module_to_avoid_is_abandoned() -> None:
    # pytest imports a plugin's modules through its assertion rewriter: one imported ahead would not be rewritten.
    job = Job(program=PROBE, preload=Preload(modules=["decimal", "fractions"], avoid=["numbers"]), limits=LIMITS)
    with Pool(workers=1) as pool:
        records = _records(pool, [job] * 3)
    assert [r["preloaded"] for r in records] == [None] * 3


def test_a_preloading_module_sees_the_uid_limits_and_environment_of_the_job(venv_with_bad_modules: Path) -> None:
    site = next(venv_with_bad_modules.glob("lib/python*/site-packages"))
    (site / "seen.py").write_text(
        "import os, resource, sys\n"
        "SEEN = [os.getuid(), os.environ.get('APP_MODE'), os.environ.get('HOME'),"
        " resource.getrlimit(resource.RLIMIT_FSIZE)[0], sys.argv[0]]\n")
    program = """import os, resource, sys
def main(data, channel):
    import _semcoder_job
    _semcoder_job.PRELOADED or _semcoder_job.use_site_packages([], True)  # as a cold job must (the preload did)
    import seen
    channel.send({"seen": seen.SEEN, "now": [os.getuid(), os.environ.get("APP_MODE"), os.environ.get("HOME"),
                  resource.getrlimit(resource.RLIMIT_FSIZE)[0], sys.argv[0]],
                  "preloaded": (_semcoder_job.PRELOADED or {}).get("modules")})
"""
    limits = Limits(wall_time_s=60, cpu_time_s=60, memory_mb=512, file_size_mb=32)
    job = Job(program=program, env={"APP_MODE": "test"}, preload=Preload(modules=["seen"]), limits=limits)
    with Pool(workers=1, python=str(venv_with_bad_modules), limits=limits) as pool:
        records = _records(pool, [job] * 3)
    for record in records[1:]:
        assert record["preloaded"] == ["seen"]
        seen, now = record["seen"], record["now"]
        assert seen == now  # uid (the job's own already), environment, HOME, file size limit, argv[0]
        assert now[3] == 32 * 1024 * 1024


# A job of one kind (one preload) whose CPU budget follows its inputs, and its record of how it ran.
BUDGET = """import sys
def main(data, channel):
    import _semcoder_job
    channel.send({"preloaded": (_semcoder_job.PRELOADED or {}).get("modules")})
    while data == "spin":
        pass
"""


def test_a_child_prepared_for_a_larger_cpu_budget_serves_jobs_with_smaller_ones_under_their_own() -> None:
    """The eval harness's and the tracer's budgets follow their inputs: jobs of one kind with other budgets still get
    preloaded children (prepared with the largest budget the kind has had), and each job keeps its own CPU limit."""

    def job(cpu_s: float, data: str | None = None) -> Job:
        return Job(program=BUDGET, data=data, preload=Preload(modules=["decimal"]),
                   limits=Limits(wall_time_s=120, cpu_time_s=cpu_s, memory_mb=512))

    with Pool(workers=1) as pool:
        results = [pool.submit_job(j).result() for j in (job(30), job(10), job(30), job(1, "spin"), job(20))]
    assert [r.records[0]["preloaded"] for r in results] == [None, ["decimal"], ["decimal"], ["decimal"], ["decimal"]]
    assert [r.execution.warm for r in results] == ["", "preloaded", "preloaded", "preloaded", "preloaded"]
    spun = results[3].execution
    # Killed by its own 1 s of CPU (RLIMIT_CPU), not the 30 s its child was prepared with, nor the 120 s wall limit.
    assert spun.status is Status.timeout
    assert spun.duration_s < 30


PATHS = """import sys
def main(data, channel):
    import _semcoder_job
    channel.send({"path": sys.path[1:], "preloaded": (_semcoder_job.PRELOADED or {}).get("modules")})
"""


@pytest.mark.parametrize("site_packages", [True, False])
def test_a_preload_without_site_packages_leaves_sys_path_as_a_cold_start_has_it(site_packages: bool) -> None:
    """The tracer and the eval harness run on the standard library alone (the sandbox starts Python with -S): their
    preload must not put the environment's site-packages where the code under test could import from them."""
    job = Job(program=PATHS, preload=Preload(modules=["decimal"], site_packages=site_packages), limits=LIMITS)
    with Pool(workers=1) as pool:
        cold, *warm = _records(pool, [job] * 3)
    assert cold["preloaded"] is None and all(r["preloaded"] == ["decimal"] for r in warm)
    assert not any("site-packages" in path for path in cold["path"])
    for record in warm:
        if site_packages:  # what a program that sets up site-packages itself needs (the pytest driver)
            assert any("site-packages" in path for path in record["path"])
        else:
            assert record["path"] == cold["path"]


AHEAD = """import sys
CODE = sys._getframe().f_code
def main(data, channel):
    ahead = getattr(sys.modules.get("_semcoder_fork_server"), "_MAIN_CODE", None)
    channel.send({"ahead": ahead is not None and ahead[2] is CODE, "file": __file__})
"""
WARNS = """def main(data, channel):
    assert (data, "a tuple is never false")
    channel.send(1)
"""


def test_a_warm_child_runs_the_program_it_compiled_ahead_only_where_it_is_the_same() -> None:
    preload = Preload(modules=["decimal"])
    same = Job(program=AHEAD, preload=preload, limits=LIMITS)
    other = Job(program=AHEAD + "\n# another program\n", preload=preload, limits=LIMITS)
    with Pool(workers=1) as pool:
        records = _records(pool, [same, same, same, other, other, same])
    # The first runs cold; a program that differs from the previous job's is compiled as it comes, and the children
    # waiting after it are prepared for that program.
    assert [r["ahead"] for r in records] == [False, True, True, False, True, False]
    assert len({r["file"] for r in records}) == 1


SHARED = """import sys
def main(data, channel):
    ahead = getattr(sys.modules.get("_semcoder_fork_server"), "_MAIN_CODE", None)
    channel.send({"ahead": ahead is not None and ahead[0] == __file__, "shared": ahead is not None and ahead[3]})
"""


def test_warm_children_load_the_program_an_earlier_child_compiled() -> None:
    """Compiling the program is the largest part of a warm child's own work (3 ms for the eval harness): a child that
    compiled it hands the code object on, and the children forked after that load it instead (as marshal)."""
    job = Job(program=SHARED, preload=Preload(modules=["decimal"]), limits=LIMITS)
    with Pool(workers=1) as pool:
        records = _records(pool, [job] * 5)
    assert [r["ahead"] for r in records] == [False, True, True, True, True]
    # The first job runs cold; the two children forked after it compile the program (none was compiled before), and
    # every child forked after one of them ran its job loads it. Which of the waiting children takes a job depends
    # on which finished preloading first, so only that bound and the last job (surely a later child) are fixed.
    shared = [r["shared"] for r in records]
    assert shared[:2] == [False, False] and shared[-1] is True, shared
    assert shared.count(False) <= 3, shared


def test_a_program_whose_compilation_warns_warns_in_every_job() -> None:
    job = Job(program=WARNS, data=[1], preload=Preload(modules=["decimal"]), limits=LIMITS)
    with Pool(workers=1) as pool:
        results = [pool.submit_job(job).result() for _ in range(3)]
    assert all(r.ok for r in results), [r.problem for r in results]
    assert [r.execution.warm for r in results] == ["", "preloaded", "preloaded"]
    assert all("SyntaxWarning" in r.execution.stderr for r in results), [r.execution.stderr for r in results]


RUNTIME = """import sys
def main(data, channel):
    cached = getattr(sys.modules["_semcoder_fork_server"], "_RUNTIME_CODE", {})
    constants = {id(c) for code in cached.values() if code is not None for c in code.co_consts}
    channel.send({"cached": len(cached), "inherited": id(sys.modules["_semcoder_job"].serve.__code__) in constants})
"""


def test_warm_children_run_the_job_runtime_the_server_compiled_once() -> None:
    """The runtime a preloaded child imports first is the code object the server compiled before forking it, not one
    each child compiles again (the same runtime, job after job)."""
    job = Job(program=RUNTIME, preload=Preload(modules=["decimal"]), limits=LIMITS)
    with Pool(workers=1) as pool:
        records = _records(pool, [job] * 4)
    assert [r["inherited"] for r in records[1:]] == [True, True, True]  # the first job ran cold
    assert all(r["cached"] == 1 for r in records[1:])
