"""`--executor ray` on a real local two-node Ray cluster (two raylets on this machine): the same outputs as the
local executor, byte for byte, also when the worker node is killed mid-run; and the preflight's refusals."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

pytest.importorskip("ray")

import contextlib

from sandbox import SandboxError
from sandbox._ray import node_facts, preflight_problems
from sandbox.executor import open_job_runner

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data_pipeline" / "corpus"
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
# The CLI as installed, with the runner's per-job log shown (the test waits for a job to reach the worker node).
CLI = ("import logging, sys; logging.basicConfig(level=logging.WARNING, format='%(message)s'); "
       "logging.getLogger('sandbox.ray').setLevel(logging.DEBUG); from agent.cli import main; "
       "sys.argv[0] = 'semcoder'; main()")
LONG = 900  # seconds: only ever a bound on a loaded machine, never a pace


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_under(marker: str) -> list[int]:
    """Pids of the processes whose command line names `marker` (one node's temp dir), and their descendants."""
    parents: dict[int, int] = {}
    roots = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if marker in cmdline:
            roots.append(int(entry.name))
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return sorted(found)


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Cluster:
    """A Ray head and worker nodes started with `ray start`, each node with a temp dir of its own."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.workers: dict[str, int] = {}
        self._start("head", "--head", f"--port={self.port}", "--include-dashboard=false")

    def _start(self, name: str, *args: str, env: dict[str, str] | None = None) -> int:
        node_port = _free_port()
        started = subprocess.run([*RAY, "start", *args, "--node-ip-address=127.0.0.1", "--num-cpus=1",
                                  f"--node-manager-port={node_port}", f"--temp-dir={self.root}/{name}",
                                  "--disable-usage-stats"], capture_output=True, text=True, timeout=LONG, cwd=self.root,
                                 env={**os.environ, **(env or {})})
        assert started.returncode == 0, f"ray start {name}:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}"
        return node_port

    def add_worker(self, name: str, env: dict[str, str] | None = None) -> int:
        """A worker node; `env`: its raylet's environment on top of this one (its workers inherit it)."""
        self.workers[name] = self._start(name, f"--address={self.address}", env=env)
        return self.workers[name]

    def kill(self, name: str) -> None:
        _kill(_processes_under(f"{self.root}/{name}"))

    def stop(self) -> None:
        _kill(_processes_under(self.root))


@pytest.fixture(scope="module", autouse=True)
def _ray_token():
    """Token authentication with a token of this module's own, in the environment only: the nodes, the CLI and
    this process agree, and nothing is read from or left in ~/.ray (Ray 2.60 otherwise decides per process
    whether a token file it finds there applies)."""
    saved = {name: os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def cluster(_ray_token):
    root = tempfile.mkdtemp(prefix="rayt-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    made = Cluster(root)
    try:
        yield made
    finally:
        made.stop()


def _run_cli(*args: str, kill_when: tuple[Cluster, str] | None = None) -> tuple[str, str]:
    """Runs `semcoder ARGS`; with `kill_when`, kills that worker node once a job is in flight there."""
    process = subprocess.Popen([sys.executable, "-c", CLI, *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    killed = threading.Event()

    def read_stderr() -> None:
        for line in process.stderr:
            lines.append(line)
            if kill_when and not killed.is_set():
                cluster, name = kill_when
                if re.search(rf"ray: a job to node \S+:{cluster.workers[name]} ", line):
                    cluster.kill(name)
                    killed.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        stdout = process.stdout.read()
        process.wait(timeout=LONG)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=60)
    stderr = "".join(lines)
    assert process.returncode == 0, stderr[-4000:]
    if kill_when:
        assert killed.is_set(), f"no job ever reached the worker node:\n{stderr[-4000:]}"
    return stdout, stderr


def _lost_jobs(stderr: str, port: int) -> int:
    found = re.findall(rf"(ray: lost node \S+:{port} \(\w+\); (\d+) job\(s\) it held.*)", stderr)
    assert len(found) == 1, stderr[-4000:]
    print(found[0][0])  # shown with pytest -s: what the run reported about the node it lost
    return int(found[0][1])


def _humaneval_samples(path: Path, tasks: int = 10) -> None:
    """Per task: the canonical solution, the same after a second's sleep (passes), and a wrong one."""
    from evals.loaders import load_benchmark

    rows = []
    for task in load_benchmark("humaneval")[:tasks]:
        rows += [{"task_id": task.task_id, "completion": task.canonical_solution},
                 {"task_id": task.task_id, "completion": "    import time\n    time.sleep(1)\n"
                                                         + task.canonical_solution},
                 {"task_id": task.task_id, "completion": "    return None\n"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_eval_on_two_nodes_equals_local_with_the_worker_node_killed_mid_run(cluster, tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    _humaneval_samples(samples)
    common = ("eval", "humaneval", "--samples", str(samples), "--partial", "--json")
    local, _ = _run_cli(*common, "--workers", "2")
    port = cluster.add_worker("eval-worker")
    on_ray, stderr = _run_cli(*common, "--executor", "ray", "--ray-address", cluster.address, "--workers", "1",
                              kill_when=(cluster, "eval-worker"))
    assert _lost_jobs(stderr, port) >= 1  # a job was in flight there: it ran again on the head, once
    assert on_ray == local
    report = json.loads(on_ray)
    assert report["n_tasks"] == 10 and all(score == {"passed": 2, "n": 3} for score in report["per_task"].values())


def _tree(out: Path) -> dict[str, object]:
    """Every file a PyX run writes that a rerun reads or a user keeps, timings (seconds) taken out."""
    files: dict[str, object] = {}
    for path in sorted(out.rglob("*")):
        if path.is_file() and "_dataset" not in path.parts[-2]:
            name = str(path.relative_to(out))
            if name.endswith("stats.json"):
                stats = json.loads(path.read_text())
                for stage in stats.get("stages", {}).values():
                    stage.pop("seconds")
                files[name] = stats
            else:
                files[name] = path.read_bytes()
    return files


PYX = ("data", "pyx", "--source", str(CORPUS), "--generated", "24", "--shard-size", "8")


@pytest.fixture(scope="module")
def pyx_local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PyX folder made by the local executor: what the Ray runs must equal, and PyX-R's input."""
    out = tmp_path_factory.mktemp("pyx") / "local"
    _run_cli(*PYX, "--out", str(out), "--workers", "2")
    return out


def test_pyx_on_two_nodes_equals_local_with_the_worker_node_killed_mid_run(cluster, pyx_local: Path,
                                                                           tmp_path: Path) -> None:
    port = cluster.add_worker("pyx-worker")
    _, stderr = _run_cli(*PYX, "--out", str(tmp_path / "ray"), "--executor", "ray", "--ray-address",
                         cluster.address, "--workers", "1", kill_when=(cluster, "pyx-worker"))
    assert _lost_jobs(stderr, port) >= 1
    _assert_same_tree(pyx_local, tmp_path / "ray")
    assert (tmp_path / "ray" / "pyx.jsonl").read_text().count("\n") > 0


def _assert_same_tree(local_out: Path, ray_out: Path) -> None:
    local, on_ray = _tree(local_out), _tree(ray_out)
    assert sorted(on_ray) == sorted(local)
    for name in local:
        assert on_ray[name] == local[name], name


def test_pyxr_on_two_nodes_equals_local_with_the_worker_node_killed_mid_run(cluster, pyx_local: Path,
                                                                            tmp_path: Path) -> None:
    """PyX-R (teacher-free: bugs planted in the verified programs, their failing traces, the repairs checked in the
    sandbox) through Ray: the same records as the local executor's, a node lost mid-run."""
    _run_cli("data", "pyxr", "--pyx", str(pyx_local), "--out", str(tmp_path / "local"), "--workers", "2")
    port = cluster.add_worker("pyxr-worker")
    _, stderr = _run_cli("data", "pyxr", "--pyx", str(pyx_local), "--out", str(tmp_path / "ray"), "--executor", "ray",
                         "--ray-address", cluster.address, "--workers", "1", kill_when=(cluster, "pyxr-worker"))
    assert _lost_jobs(stderr, port) >= 1
    _assert_same_tree(tmp_path / "local", tmp_path / "ray")
    assert (tmp_path / "ray" / "pyx_r.jsonl").read_text().count("\n") > 0


def test_an_unreachable_cluster_is_refused_before_any_work() -> None:
    port = _free_port()  # nothing listens there
    with pytest.raises(SandboxError, match=rf"cannot reach the Ray cluster at 127.0.0.1:{port}"), \
            open_job_runner("ray", address=f"127.0.0.1:{port}"):
        pytest.fail("no runner may be made")
    result = subprocess.run([sys.executable, "-m", "agent.cli", "eval", "humaneval", "--samples",
                             str(ROOT / "tests/evals/data/example_samples.jsonl"), "--data",
                             str(ROOT / "tests/evals/data/example_problem.jsonl"), "--executor", "ray",
                             "--ray-address", f"127.0.0.1:{port}"], capture_output=True, text=True, cwd=ROOT,
                            timeout=LONG)
    assert result.returncode == 1 and f"Error: cannot reach the Ray cluster at 127.0.0.1:{port}" in result.stderr
    assert "scoring" not in result.stderr  # nothing ran


def test_ray_address_without_ray_executor_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "agent.cli", "data", "pyx", "--generated", "1", "--out",
                             "/nonexistent", "--ray-address", "127.0.0.1:1"], capture_output=True, text=True,
                            cwd=ROOT, timeout=LONG)
    assert result.returncode == 2 and "--ray-address is for --executor ray" in result.stderr


def test_preflight_refuses_partial_isolation_and_version_mismatches() -> None:
    driver = node_facts("local")
    full = {**driver, "isolation": {"level": "full", "missing": []}}
    assert preflight_problems(driver, {"a:1": full}) == []
    partial = {**full, "isolation": {"level": "partial", "missing": ["bubblewrap namespaces"]}}
    older = {**full, "semcoder": "0.0.1", "python": "3.11.0"}
    problems = preflight_problems(driver, {"a:1": partial, "b:2": older})
    assert len(problems) == 3
    assert "node a:1" in problems[0] and "'partial' (missing: bubblewrap namespaces)" in problems[0]
    assert "node b:2: semcoder version '0.0.1'" in problems[1]
    assert "node b:2: Python version '3.11.0'" in problems[2]


def test_every_node_of_a_live_cluster_passes_the_preflight(cluster) -> None:
    """The real preflight on the real nodes (this machine's sandbox has full isolation, as in CI), and a job. In a
    process of its own: Ray reads its authentication settings once per process."""
    program = ("import sys; from sandbox import Job; from sandbox.executor import open_job_runner\n"
               "with open_job_runner('ray', address=sys.argv[1], workers=1) as runner:\n"
               "    result = runner.submit_job(Job(program='def main(data, channel):\\n    channel.send(data * 2)',"
               " data=21)).result()\n"
               "    print(len(runner.nodes), result.records, result.execution.isolation)\n")
    out = subprocess.run([sys.executable, "-c", program, cluster.address], capture_output=True, text=True, cwd=ROOT,
                         timeout=LONG)
    assert out.returncode == 0, out.stderr[-4000:]
    nodes, rest = out.stdout.split(" ", 1)
    assert int(nodes) >= 1 and rest.strip() == "[42] full"


@pytest.fixture(scope="module")
def mixed_cluster(_ray_token, tmp_path_factory: pytest.TempPathFactory):
    """A head that could run jobs, and two worker nodes that must not: one whose Python imports a sandbox whose
    source differs from the driver's (a copy with one comment added, first on its PYTHONPATH), one whose bwrap
    does not work (SEMCODER_BWRAP names a program that is not bwrap)."""
    other = tmp_path_factory.mktemp("other-sandbox")
    shutil.copytree(ROOT / "sandbox", other / "sandbox", ignore=shutil.ignore_patterns("__pycache__"))
    with (other / "sandbox" / "_models.py").open("a") as handle:
        handle.write("# a node whose sandbox is another version's\n")
    root = tempfile.mkdtemp(prefix="rayb-", dir="/tmp")
    made = Cluster(root)
    try:
        made.add_worker("other-source", env={"PYTHONPATH": str(other)})
        made.add_worker("no-bwrap", env={"SEMCODER_BWRAP": "/bin/false"})
        yield made
    finally:
        made.stop()


def test_nodes_that_must_not_run_jobs_are_named_before_any_work(mixed_cluster, tmp_path: Path) -> None:
    """The preflight on real nodes: no job starts, nothing falls back, and the error names each bad node and why."""
    samples = tmp_path / "samples.jsonl"
    _humaneval_samples(samples, tasks=2)
    # From a directory of its own: a Ray worker's sys.path starts with the driver's, which would put this checkout's
    # sandbox ahead of the other node's PYTHONPATH (the driver finds the checkout through PYTHONPATH instead).
    result = subprocess.run([sys.executable, "-m", "agent.cli", "eval", "humaneval", "--samples", str(samples),
                             "--partial", "--json", "--executor", "ray", "--ray-address", mixed_cluster.address],
                            capture_output=True, text=True, cwd=tmp_path, timeout=LONG,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    assert result.stdout == ""  # no report: nothing was scored
    error = result.stderr
    assert "Error: the Ray cluster cannot run sandbox jobs:" in error, error[-3000:]
    other, no_bwrap = (rf"node \S+:{mixed_cluster.workers[name]}: " for name in ("other-source", "no-bwrap"))
    assert re.search(other + r"sandbox source \(sandbox/\*\.py digest\) '\w+' differs from the driver's", error), error
    assert re.search(no_bwrap + "its sandbox did not start: .*SEMCODER_BWRAP", error), error
    blamed = [line for line in error.splitlines() if line.strip().startswith("node ")]
    assert len(blamed) == 2, error  # the head is fine, and is not blamed


@pytest.fixture(scope="module")
def docker_ready() -> None:
    from sandbox._api import shared_backend

    try:
        shared_backend("docker")
    except (SandboxError, ImportError) as exc:
        if os.environ.get("SEMCODER_REQUIRE_DOCKER") == "1":
            pytest.fail(f"SEMCODER_REQUIRE_DOCKER=1 but the Docker sandbox is unavailable: {exc}")
        pytest.skip(f"no Docker sandbox here: {exc}")


def test_the_docker_backend_on_ray_runs_jobs_in_containers_and_pyx_equals_local(cluster, docker_ready,
                                                                               tmp_path: Path) -> None:
    """`--backend docker --executor ray`: each node's actor owns a pool of containers (the same image everywhere);
    a job reports the container's isolation, and a PyX run equals the local executor's on the same backend."""
    program = ("import sys; from sandbox import Job; from sandbox.executor import open_job_runner\n"
               "with open_job_runner('ray', address=sys.argv[1], workers=1, backend='docker') as runner:\n"
               "    result = runner.submit_job(Job(program='import os\\ndef main(data, channel):\\n"
               "    channel.send([data * 2, os.path.exists(\"/.dockerenv\")])', data=21)).result()\n"
               "    print(result.records, result.execution.isolation)\n")
    out = subprocess.run([sys.executable, "-c", program, cluster.address], capture_output=True, text=True, cwd=ROOT,
                         timeout=LONG)
    assert out.returncode == 0, out.stderr[-4000:]
    assert out.stdout.strip() == "[[42, True]] full"
    common = (*PYX[:-4], "--generated", "8", "--shard-size", "4", "--backend", "docker")
    _run_cli(*common, "--out", str(tmp_path / "local"), "--workers", "1")
    _run_cli(*common, "--out", str(tmp_path / "ray"), "--executor", "ray", "--ray-address", cluster.address,
             "--workers", "1")
    _assert_same_tree(tmp_path / "local", tmp_path / "ray")
