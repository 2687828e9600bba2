"""Prestarted jobs (sandbox.job.Preload.prestart): a warm child runs the program ahead of its job, on the previous
job's files and data, and takes the job at the program's gate only where that gives what a cold start gives.

Every sequence here runs twice, prestarted and cold (no preload), and the records must be equal; the sandbox's
own account (`ExecResult.warm`) says which way each job ran. Jobs go one at a time (a job that was queued behind
another leaves no time to start ahead).
"""

from __future__ import annotations

import pytest

from sandbox import Job, Limits, Pool
from sandbox.job import Preload

LIMITS = Limits(wall_time_s=60, cpu_time_s=60, memory_mb=512)

# The program imports the workspace at its top (ahead of its job, when prestarted), then waits at its gate.
PROGRAM = """
import sys, traceback
import calc, views

def main(data, channel):
    job = channel.begin(lambda new: new["mode"] == data["mode"])
    try:
        calc.boom()
        line = None
    except ZeroDivisionError:
        line = traceback.extract_tb(sys.exc_info()[2])[-1].lineno
    channel.send({"n": job["n"], "values": views.values(), "line": line, "early": calc.EARLY})
"""

CALC = '''"""A module whose functions are bound in every way a project binds them."""
import functools

EARLY = 1


def helper():
    return {helper}


USED = helper()  # runs at import, before the job


def value():
    {value}


class Shape:
    def area(self):
        return {area}

    @staticmethod
    def sides():
        return {sides}

    @property
    def name(self):
        return {name!r}


def _logged(function):
    @functools.wraps(function)
    def wrapper(*args):
        return function(*args)
    return wrapper


@_logged
def decorated():
    return {decorated}


@functools.lru_cache(maxsize=None)
def cached():
    return {cached}


HANDLERS = [lambda: {handler}]


def boom():
    return 1 / 0
'''

VIEWS = """from calc import value as aliased, Shape, decorated, cached, HANDLERS, USED

def values():
    shape = Shape()
    return [aliased(), shape.area(), Shape.sides(), shape.name, decorated(), cached(), HANDLERS[0](), USED]
"""

BASE = {"helper": 1, "value": "return 0", "area": 2, "sides": 3, "name": "a", "decorated": 4, "cached": 5,
        "handler": 6}


def _files(**changes: object) -> dict[str, str]:
    return {"calc.py": CALC.format(**{**BASE, **changes}), "views.py": VIEWS}


def _run(jobs: list[tuple[dict[str, str], str]], prestart: bool) -> list[tuple[dict, str]]:
    """(record, how the sandbox ran it) per job, one job at a time in one warm pool."""
    out = []
    with Pool(workers=1) as pool:
        for n, (files, mode) in enumerate(jobs):
            job = Job(program=PROGRAM, data={"mode": mode, "n": n}, files=files, limits=LIMITS,
                      preload=Preload(prestart=True) if prestart else None)
            result = pool.submit_job(job).result()
            assert result.ok, (result.problem, result.execution.stderr[-2000:])
            out.append((result.records[0], result.execution.warm))
    return out


def _kind(how: str) -> str:
    """ExecResult.warm without the seconds a job waited for its child to reach the gate (load, not behaviour)."""
    return "prestarted" if how.startswith("prestarted") else how


def _same_as_cold(jobs: list[tuple[dict[str, str], str]]) -> list[str]:
    warm, cold = _run(jobs, prestart=True), _run(jobs, prestart=False)
    assert [record for record, _ in warm] == [record for record, _ in cold]
    assert all(how == "" for _, how in cold)
    return [_kind(how) for _, how in warm]


def test_changed_function_bodies_are_taken_over_wherever_the_functions_are_bound() -> None:
    jobs = [(_files(), "x"),
            (_files(value="return 10"), "x"),
            (_files(value="x = 11\n\n    return x"), "x"),  # two lines more: boom's line moves
            (_files(area=12, sides=13, name="b", decorated=14, cached=15, handler=16), "x"),
            (_files(), "x")]
    assert _same_as_cold(jobs) == ["", "prestarted", "prestarted", "prestarted", "prestarted"]


@pytest.mark.parametrize("change", [
    {"helper": 2},  # a function that ran before the job
    {"value": '"""documented now"""\n    return 0'},  # a docstring (the function's __doc__)
])
def test_a_change_that_could_have_acted_before_the_job_runs_cold(change: dict[str, object]) -> None:
    kinds = _same_as_cold([(_files(), "x"), (_files(), "x"), (_files(**change), "x"), (_files(), "x")])
    assert kinds[:2] == ["", "prestarted"]
    assert kinds[2].startswith("declined: ") and kinds[3].startswith("declined: "), kinds


def test_module_level_code_decorators_and_signatures_are_never_swapped() -> None:
    changes = [
        _files() | {"calc.py": _files()["calc.py"].replace("EARLY = 1", "EARLY = 2")},
        _files() | {"calc.py": _files()["calc.py"].replace("def value():", "def value(x=1):")},
        _files() | {"calc.py": _files()["calc.py"].replace("@_logged\n", "")},
    ]
    kinds = _same_as_cold([(_files(), "x"), *[(files, "x") for files in changes]])
    assert [kind.split(": ")[-1] for kind in kinds[1:]] == ["calc.py changed outside function bodies"] * 3


def test_data_the_program_used_before_its_gate_must_be_the_same() -> None:
    kinds = _same_as_cold([(_files(), "x"), (_files(value="return 1"), "y"), (_files(value="return 2"), "y")])
    assert kinds == ["", "declined: data the program already used differs", "prestarted"]


def test_a_file_read_before_the_job_is_never_swapped() -> None:
    program = PROGRAM.replace("import calc, views", "import calc, views\nSETTING = open('setting.txt').read()")
    program = program.replace('"early": calc.EARLY', '"early": SETTING')
    jobs = [({**_files(), "setting.txt": text}, "x") for text in ("a", "a", "b")]
    with Pool(workers=1) as pool:
        seen = []
        for n, (files, mode) in enumerate(jobs):
            result = pool.submit_job(Job(program=program, data={"mode": mode, "n": n}, files=files, limits=LIMITS,
                                         preload=Preload(prestart=True))).result()
            seen.append((result.records[0]["early"], _kind(result.execution.warm)))
    assert seen == [("a", ""), ("a", "prestarted"), ("b", "declined: setting.txt was read before the job")]


def test_what_the_program_printed_before_its_job_is_the_jobs_output() -> None:
    program = "print('imported', flush=True)\n" + PROGRAM
    with Pool(workers=1) as pool:
        results = [pool.submit_job(Job(program=program, data={"mode": "x", "n": n}, files=_files(value=f"return {n}"),
                                       limits=LIMITS, preload=Preload(prestart=True))).result() for n in range(3)]
    assert [_kind(r.execution.warm) for r in results] == ["", "prestarted", "prestarted"]
    # printed before the runtime took stdout as the job's channel: the job's stdout, once, ahead of the report
    assert all(r.execution.stdout.startswith("imported\n") and r.execution.stdout.count("imported") == 1
               and not r.execution.stderr for r in results), [(r.execution.stdout, r.execution.stderr) for r in results]


def test_a_thread_started_before_the_job_makes_it_run_cold() -> None:
    program = PROGRAM.replace("import calc, views", "import calc, views, threading, time\n"
                              "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()")
    with Pool(workers=1) as pool:
        kinds = [pool.submit_job(Job(program=program, data={"mode": "x", "n": n}, files=_files(value=f"return {n}"),
                                     limits=LIMITS, preload=Preload(prestart=True))).result().execution.warm
                 for n in range(3)]
    kinds = [_kind(kind) for kind in kinds]
    assert kinds == ["", "declined: threads were started before the job", "declined: threads were started before "
                     "the job"]


def test_a_process_started_before_the_job_makes_it_run_cold() -> None:
    """It could read the job (and its key) as the job comes: the child refuses the job before it is sent."""
    program = PROGRAM.replace("import calc, views", "import calc, views, subprocess\n"
                              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])")
    with Pool(workers=1) as pool:
        results = [pool.submit_job(Job(program=program, data={"mode": "x", "n": n}, files=_files(value=f"return {n}"),
                                       limits=LIMITS, preload=Preload(prestart=True))).result() for n in range(3)]
    assert all(r.ok for r in results), [r.problem for r in results]
    assert [r.records[0]["values"][0] for r in results] == [0, 1, 2]
    assert [_kind(r.execution.warm) for r in results] == ["", *["declined: processes were started before the job"] * 2]


def test_the_code_under_test_cannot_take_the_job_ahead_of_the_program() -> None:
    """What runs before the job finds no way to the server's side of the go: the job runtime's globals hold none
    of it, and `serve` serves once (the program's own call comes first)."""
    probe = (
        "import _semcoder_job\n"
        "HOOKS = sorted(k for k, v in vars(_semcoder_job).items() if isinstance(v, dict) and 'await_job' in v)\n"
    )
    program = PROGRAM.replace('"early": calc.EARLY', '"early": calc.EARLY, "hooks": views.HOOKS, "again": views.AGAIN')
    views = VIEWS + probe + (
        "def _again():\n"
        "    try:\n"
        "        _semcoder_job.serve(lambda data, channel: None)\n"
        "    except BaseException as exc:\n"
        "        return type(exc).__name__\n"
        "AGAIN = None\n")
    program = program.replace("    job = channel.begin(", "    views.AGAIN = views._again()\n    job = channel.begin(")
    with Pool(workers=1) as pool:
        results = [pool.submit_job(Job(program=program, data={"mode": "x", "n": n},
                                       files={**_files(value=f"return {n}"), "views.py": views},
                                       limits=LIMITS, preload=Preload(prestart=True))).result() for n in range(3)]
    assert all(r.ok for r in results), [(r.problem, r.execution.stderr[-500:]) for r in results]
    assert [_kind(r.execution.warm) for r in results] == ["", "prestarted", "prestarted"]
    assert [(r.records[0]["hooks"], r.records[0]["again"]) for r in results] == [([], "FileNotFoundError")] + [
        ([], "RuntimeError")] * 2
