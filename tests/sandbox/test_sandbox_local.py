"""The local backend's own promises: uid and capabilities, cleanup, zombies, partial fallback."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

import sandbox
from sandbox import ExecRequest, Limits, Pool, Status, _host
from sandbox._cgroups import own_cgroup_dir
from sandbox._local import LocalBackend, wait_for_teardowns


def _proc_status(stdout: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in stdout.splitlines() if ":\t" in line)


def test_the_program_runs_as_a_dedicated_uid_without_capabilities() -> None:
    result = sandbox.run("print(open('/proc/self/status').read())")
    status = _proc_status(result.stdout)
    assert status["Uid"].split()[0] != "0"
    assert status["CapEff"].strip() == status["CapPrm"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"
    assert result.isolation == "full"


def test_the_environment_is_scrubbed_and_the_root_is_minimal() -> None:
    result = sandbox.run("import os\nprint(sorted(os.environ))\nprint(sorted(os.listdir('/')))")
    env_line, root_line = result.stdout.splitlines()
    assert env_line == "['HOME', 'LANG', 'LOGNAME', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'TMPDIR', 'USER']"
    assert "home" not in root_line and "work" not in root_line and "etc" not in root_line


def _bwrap_children_states() -> list[str]:
    """States of this process's bwrap children (other tests in the session may leave their own children)."""
    states = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        for pid in children:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except FileNotFoundError:
                continue
            if stat[stat.index("(") + 1 : stat.rindex(")")] == "bwrap":
                states.append(stat[stat.rindex(")") + 2])
    return states


def _our_cgroups() -> list[Path]:
    found = []
    for controller in ("memory", "pids"):
        base = own_cgroup_dir(controller)
        if base:
            found += list(base.glob(f"semcoder-sandbox-{os.getpid()}-*"))
    return found


def test_cold_runs_leave_no_zombies_and_no_cgroups() -> None:
    before = set(_our_cgroups())  # pools other tests of this session still hold
    for _ in range(5):
        assert sandbox.run("print(1)").stdout == "1\n"
    wait_for_teardowns()
    assert "Z" not in _bwrap_children_states()
    assert set(_our_cgroups()) <= before


def test_each_pool_job_gets_a_clean_working_dir_and_its_own_limits() -> None:
    before = set(_our_cgroups())
    with Pool(workers=1) as pool:
        first = pool.submit(ExecRequest(code="open('leftover.txt', 'w').write('x')\nimport os\nprint(os.getpid())"))
        second = pool.submit(ExecRequest(code="import os\nprint(sorted(os.listdir('.')), os.getpid())"))
        limited = pool.submit(ExecRequest(code="while True: pass", limits=Limits(cpu_time_s=1)))
        after = pool.submit(ExecRequest(code="print('fine')"))
        results = [f.result() for f in (first, second, limited, after)]
    assert results[1].stdout.split(" ")[0] == "['main.py']"
    assert results[0].stdout.strip() != results[1].stdout.split()[-1]  # a fresh process each time
    assert results[2].status is Status.timeout
    assert (results[3].status, results[3].stdout) == (Status.ok, "fine\n")
    assert set(_our_cgroups()) <= before


def test_pool_map_keeps_order_and_runs_in_parallel() -> None:
    requests = [ExecRequest(code=f"import time\ntime.sleep(0.3)\nprint({i})") for i in range(4)]
    with Pool(workers=2) as pool:
        results = pool.map(requests)
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(4)]


def test_pool_limits_apply_to_requests_without_their_own() -> None:
    with Pool(workers=1, limits=Limits(wall_time_s=1)) as pool:
        result = pool.submit(ExecRequest(code="import time\ntime.sleep(30)")).result()
    assert result.status is Status.timeout


def test_bad_file_names_are_rejected_before_running() -> None:
    with pytest.raises(ValueError, match="relative path"):
        sandbox.run("pass", files={"../escape.txt": "x"})


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown sandbox backend 'nope'"):
        sandbox.run("pass", backend="nope")


def test_without_bwrap_and_cgroups_it_runs_partially_isolated_and_warns() -> None:
    _host._probe.cache_clear()
    with pytest.warns(RuntimeWarning, match="PARTIAL.*bubblewrap.*cgroups"):
        backend = LocalBackend(use_bwrap=False, use_cgroups=False)
    assert backend.isolation == "partial"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LocalBackend(use_bwrap=False, use_cgroups=False)  # warned once, not again
    hello = backend.execute(ExecRequest(code="import os\nprint(os.getuid() != 0, input())", stdin=b"hi\n"))
    expected = f"{backend.support.dedicated_uid} hi\n"  # root-only Python here: no uid drop possible
    assert (hello.status, hello.stdout, hello.isolation) == (Status.ok, expected, "partial")
    slow = backend.execute(ExecRequest(code="import time\ntime.sleep(30)", limits=Limits(wall_time_s=1)))
    assert slow.status is Status.timeout
    burn = backend.execute(ExecRequest(code="while True: pass", limits=Limits(cpu_time_s=1)))
    assert burn.status is Status.timeout


def test_a_pool_replaces_a_worker_that_died_between_jobs() -> None:
    with Pool(workers=1) as pool:
        assert pool.submit(ExecRequest(code="print('a')")).result().stdout == "a\n"
        worker = pool._impl._slots[0]._worker  # type: ignore[union-attr]
        worker.kill()  # as if the fork server had been killed: the next job must not notice
        result = pool.submit(ExecRequest(code="print('b')")).result()
        assert (result.status, result.stdout) == (Status.ok, "b\n")
        assert pool._impl._slots[0]._worker is not worker  # type: ignore[union-attr]


def test_host_scratch_lets_a_dedicated_uid_through_without_listing() -> None:
    # Without bwrap the job's uid reaches its working dir through this host folder (a GPU machine's case).
    from sandbox._worker import _make_host_scratch

    scratch = Path(_make_host_scratch())
    try:
        assert scratch.stat().st_mode & 0o777 == 0o711
    finally:
        scratch.rmdir()


def test_a_venv_whose_python_is_a_file_in_the_project_never_runs_on_the_host(tmp_path: Path) -> None:
    """A cloned repo can commit .venv/bin/python: asking it what it is would run the project's code here."""
    from sandbox import SandboxError

    canary = tmp_path / "ran"
    venv = tmp_path / "project" / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.0\n")
    script = venv / "bin" / "python"
    script.write_text(f"#!/bin/sh\ntouch {canary}\n")
    script.chmod(0o755)
    with pytest.raises(SandboxError, match="a file inside the project"):
        sandbox.Pool(workers=1, python=str(venv))
    assert not canary.exists()
