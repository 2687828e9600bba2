"""The warm path's cost, by counts that cannot flake (issue #20): no cgroup move per job, no walk of the host's
environment after a job, and the limits that the spawners (sandbox/_fork_server.py `_Spawner`) must not bend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sandbox
from sandbox import ExecRequest, Limits, Pool, Status, _host
from sandbox._local import LocalBackend
from sandbox._worker import LocalWorker

SERVER = Path(sandbox.__file__).with_name("_fork_server.py")


def _full() -> _host.HostSupport:
    support = _host.probe()
    if support.missing:
        pytest.skip(f"needs full isolation here; missing: {', '.join(support.missing)}")
    return support


def _worker() -> LocalWorker:
    worker = LocalBackend().new_worker(64)
    worker.wait_ready()
    return worker


def test_the_scratch_wipe_never_walks_a_directory_bound_beneath_it(tmp_path: Path) -> None:
    """A venv under /tmp is bound read-only at its own path, inside the sandbox's scratch tmpfs. The wipe after each
    job used to walk it (a failed unlink per file of the environment, every job); it must stay on the tmpfs."""
    support = _full()
    venv = tmp_path / "venv"
    for index in range(50):
        (venv / "lib" / f"pkg{index}").mkdir(parents=True)
        (venv / "lib" / f"pkg{index}" / "__init__.py").write_text("")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent("""
        import importlib.util, os, sys
        spec = importlib.util.spec_from_file_location("fork_server", sys.argv[1])
        server = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(server)
        scratch, bound = sys.argv[2], sys.argv[3]
        os.makedirs(os.path.join(scratch, "work", "pkg"))
        for name in ("work/main.py", "work/pkg/m.py", "left.txt"):
            open(os.path.join(scratch, name), "w").close()
        touched = []
        for name in ("scandir", "unlink", "rmdir"):
            real = getattr(os, name)
            def counted(path, *args, real=real, **kwargs):
                touched.append(str(path))
                return real(path, *args, **kwargs)
            setattr(os, name, counted)
        server._wipe(scratch)
        print(sum(path.startswith(bound) for path in touched), sorted(os.listdir(scratch)),
              len(os.listdir(os.path.join(bound, "lib"))))
    """))
    inner = f"{scratch}/env/venv"  # as bwrap_argv binds it: its parents are made inside the tmpfs
    out = subprocess.run([support.bwrap, "--dev-bind", "/", "/", "--tmpfs", str(scratch), "--ro-bind", str(venv), inner,
                          "--", sys.executable, "-I", str(probe), str(SERVER), str(scratch), inner],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    visited_under_bind, left, packages = out.stdout.split(" ", 1)[0], *out.stdout.split(" ", 1)[1].rsplit(" ", 1)
    assert int(visited_under_bind) == 0  # not one scandir, unlink or rmdir under the bound venv
    assert left == "['env']"  # the job's files are gone; the bind's parents stay (the mount point is busy)
    assert int(packages) == 50


def test_warm_jobs_move_no_process_into_a_cgroup() -> None:
    """Moving a process into a v1 cgroup waits for an RCU grace period; a pool's children are born in their job
    cgroups (forked by each slot's spawner), so the count of moves does not grow with the jobs."""
    _full()
    worker = _worker()
    try:
        joins = []
        cgroups = set()
        for _ in range(12):
            evidence = worker.execute(ExecRequest(code="print(open('/proc/self/cgroup').read())"))
            assert evidence["setup_ok"] and evidence["exit_code"] == 0, evidence
            joins.append(evidence["cgroup_joins"])
            lines = bytes(evidence["stdout"]).decode().splitlines()  # type: ignore[call-overload]
            cgroups |= {line.rsplit("/", 1)[1] for line in lines if ":memory:" in line or ":pids:" in line}
        assert joins == [2] * 12  # the two spawners, once each, before the first job; nothing per job
        assert cgroups == {"job0", "job1"}  # each job still runs in its slot's own job cgroups
    finally:
        worker.close()


def test_a_cold_sandbox_prepares_one_child_and_moves_it_once() -> None:
    _full()
    worker = LocalBackend().new_worker(64, one_job=True)
    try:
        evidence = worker.execute(ExecRequest(code="print('x')"))
        assert (evidence["exit_code"], bytes(evidence["stdout"])) == (0, b"x\n")  # type: ignore[call-overload]
        assert evidence["cgroup_joins"] == 1  # no spawners, no second child
    finally:
        worker.close()


_THREADS = """
import threading
release = threading.Event()
started = 0
try:
    for _ in range(12):
        threading.Thread(target=release.wait).start()
        started += 1
except RuntimeError:
    pass
release.set()
print(started)
"""


def test_the_process_limit_is_the_jobs_own_with_a_spawner_in_its_cgroup() -> None:
    """The slot's spawner sits in the job's pids cgroup; pids.max leaves room for it and for nothing more: with
    processes=4 a job has its main thread and three others, cold or warm, on either slot."""
    _full()
    limits = Limits(processes=4)
    with Pool(workers=1) as pool:
        warm = [pool.submit(ExecRequest(code=_THREADS, limits=limits)).result() for _ in range(4)]
    cold = sandbox.run(_THREADS, limits=limits)
    assert [(r.status, r.stdout) for r in [*warm, cold]] == [(Status.ok, "3\n")] * 5


def _job_cgroup_pids(worker: LocalWorker) -> list[int]:
    pids = []
    for directory in worker._slot.dirs.values():  # type: ignore[union-attr]
        for job in ("job0", "job1"):
            pids += [int(pid) for pid in (directory / job / "cgroup.procs").read_text().split()]
    return sorted(set(pids))


def _dead(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def test_a_worker_whose_spawners_and_waiting_children_were_killed_runs_on() -> None:
    """A spawner may die (a job's OOM kill can pick it): the server forks that slot's children itself and starts a
    new spawner; results stay right, the moves come back only as many as were needed."""
    _full()
    worker = _worker()
    try:
        assert worker.execute(ExecRequest(code="print(1)"))["exit_code"] == 0
        victims = _job_cgroup_pids(worker)
        assert len(victims) >= 3  # both spawners and at least one waiting child, between jobs
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        while not all(_dead(pid) for pid in victims):  # a child killed as its job comes would be that job's death
            time.sleep(0.01)
        outputs, joins = [], []
        for index in range(6):
            evidence = worker.execute(ExecRequest(code=f"print({index})"))
            outputs.append((evidence["exit_code"], bytes(evidence["stdout"])))  # type: ignore[call-overload]
            joins.append(evidence["cgroup_joins"])
        assert outputs == [(0, f"{index}\n".encode()) for index in range(6)]
        assert joins[-1] == joins[2] <= 2 + 4  # new spawners (and children forked meanwhile), then no more moves
        assert worker.alive
    finally:
        worker.close()


def test_a_pool_on_a_venv_under_tmp_sees_it_read_only_and_wipes_only_its_own(tmp_path: Path) -> None:
    """The reporter's case: a venv under /tmp lands inside the sandbox's scratch /tmp. Jobs see it read-only, a
    job's own files in /tmp are gone before the next job, and the venv is left as it was."""
    _full()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    (venv / "marker.txt").write_text("kept")
    code = textwrap.dedent(f"""
        import os
        print(sorted(os.listdir('/tmp')), os.path.exists('/tmp/mine.txt'), open({str(venv / 'marker.txt')!r}).read())
        open('/tmp/mine.txt', 'w').write('x')
        try:
            open({str(venv / 'new.txt')!r}, 'w')
        except OSError as exc:
            print(type(exc).__name__)
    """)
    before = sorted(path.relative_to(venv) for path in venv.rglob("*"))
    with Pool(workers=1, python=str(venv)) as pool:
        results = [pool.submit(ExecRequest(code=code)).result() for _ in range(3)]
    top = tmp_path.parts[2]  # the first component below /tmp, made inside the sandbox for the venv's bind
    for result in results:
        assert result.status is Status.ok, result.stderr
        listing, rest = result.stdout.split("]", 1)
        assert set(eval(listing + "]")) == {top, "work"}  # no /tmp/mine.txt left by the job before
        assert rest.split()[:2] == ["False", "kept"] and rest.split()[2] in ("PermissionError", "OSError")
    assert sorted(path.relative_to(venv) for path in venv.rglob("*")) == before
