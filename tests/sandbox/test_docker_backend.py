"""The Docker backend against a real engine: what the container really may do, and what it leaves behind.

Skipped when no engine or image is there, unless SEMCODER_REQUIRE_DOCKER=1 (CI), where that fails.
The backend-independent attack suite runs on Docker too, through the `backend` fixture of this folder.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import docker
import pytest

from sandbox._docker import CONTAINER_LABEL, DockerBackend
from sandbox._docker_io import Streams
from sandbox._errors import SandboxError
from sandbox._models import ExecRequest, ExecResult, Limits, Status

pytestmark = pytest.mark.docker


def _backend_or_skip(**options: object) -> DockerBackend:
    try:
        return DockerBackend(**options)  # type: ignore[arg-type]
    except SandboxError as exc:
        if os.environ.get("SEMCODER_REQUIRE_DOCKER") == "1":
            raise
        pytest.skip(f"no Docker sandbox here: {exc}")


@pytest.fixture(scope="module")
def docker_backend() -> Iterator[DockerBackend]:
    backend = _backend_or_skip()
    yield backend
    backend.close()


@pytest.fixture
def cold_backend() -> Iterator[DockerBackend]:
    """Without spares: after a run, no container of it may exist at all."""
    backend = _backend_or_skip(keep_spares=False)
    yield backend
    backend.close()


def run(backend: DockerBackend, code: str, **request: object) -> ExecResult:
    return backend.execute(ExecRequest(code=code, **request))  # type: ignore[arg-type]


def containers_of(backend: DockerBackend) -> list[dict[str, object]]:
    client = docker.from_env(version="auto")
    try:
        return client.api.containers(all=True, filters={"label": backend.session_label})
    finally:
        client.close()


def test_a_missing_image_is_a_clear_error(docker_backend: DockerBackend) -> None:
    with pytest.raises(SandboxError, match=r"image 'semcoder-sandbox:no-such-tag' not found.*docker build"):
        DockerBackend(image="semcoder-sandbox:no-such-tag")


def test_an_engine_that_does_not_answer_is_a_clear_error(tmp_path: object) -> None:
    with pytest.raises(SandboxError, match="no Docker engine answers"):
        DockerBackend(base_url=f"unix://{tmp_path}/no-engine.sock")


def test_files_stdin_and_argv_reach_the_program(docker_backend: DockerBackend) -> None:
    code = (
        "import os, sys, helper\n"
        "print(sorted(os.listdir('.')), os.listdir('data'), sys.argv[1:])\n"
        "print(open('data/blob.bin', 'rb').read().hex(), helper.VALUE, sys.stdin.read().upper())\n"
    )
    files = {"helper.py": "VALUE = 'imported'\n", "data/blob.bin": bytes([0, 255, 10])}
    result = run(docker_backend, code, files=files, stdin=b"from stdin", argv=["--flag", "x y"])
    assert result.status is Status.ok, result.stderr
    assert result.stdout.splitlines() == [
        "['data', 'helper.py', 'main.py'] ['blob.bin'] ['--flag', 'x y']",
        "00ff0a imported FROM STDIN",
    ]
    assert result.isolation == "full"


def test_a_large_stdin_the_program_never_reads_does_not_block(docker_backend: DockerBackend) -> None:
    result = run(docker_backend, "print('done')", stdin=b"x" * 8_000_000, limits=Limits(wall_time_s=20))
    assert (result.status, result.stdout) == (Status.ok, "done\n")


def test_the_program_runs_unprivileged_without_capabilities(docker_backend: DockerBackend) -> None:
    code = "print(open('/proc/self/status').read())"
    status = dict(line.split(":\t", 1) for line in run(docker_backend, code).stdout.splitlines() if ":\t" in line)
    assert status["Uid"].split() == ["10001"] * 4
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1"


def test_the_container_has_no_network_even_to_the_host(docker_backend: DockerBackend) -> None:
    with socket.create_server(("0.0.0.0", 0)) as server:
        port = server.getsockname()[1]
        host_addresses = sorted(_host_ipv4_addresses() | {"172.17.0.1"})
        code = (
            "import os, socket\n"
            "print(sorted(os.listdir('/sys/class/net')))\n"
            f"for address in {host_addresses!r}:\n"
            "    try:\n"
            f"        socket.create_connection((address, {port}), timeout=2)\n"
            "        print('reached', address)\n"
            "    except OSError as exc:\n"
            "        print('blocked', address, exc.errno)\n"
        )
        result = run(docker_backend, code)
    lines = result.stdout.splitlines()
    assert lines[0] == "['lo']"
    assert not [line for line in lines if line.startswith("reached")], result.stdout


def _host_ipv4_addresses() -> set[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return set()
    return {info[4][0] for info in infos if not info[4][0].startswith("127.")}


def test_the_root_filesystem_is_read_only_and_the_working_dir_is_capped(docker_backend: DockerBackend) -> None:
    code = (
        "import errno\n"
        "print([line.split()[5].split(',')[0] for line in open('/proc/self/mountinfo') if line.split()[4] == '/'])\n"
        "for path in ['/tmp/evil', '/var/tmp/evil', '/etc/passwd']:\n"
        "    try:\n"
        "        open(path, 'a')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print(errno.errorcode[exc.errno])\n"
        "try:\n"
        "    with open('big', 'wb') as f:\n"
        "        f.write(b'x' * 3 * 2**20)\n"
        "except OSError as exc:\n"
        "    print(errno.errorcode[exc.errno])\n"
    )
    result = run(docker_backend, code, limits=Limits(file_size_mb=2))
    lines = result.stdout.splitlines()
    # /tmp and /var/tmp are world-writable in the image: only the read-only mount stops the writes.
    assert lines[:3] == ["['ro']", "EROFS", "EROFS"], result.stdout
    assert lines[3] in ("EACCES", "EROFS")
    assert lines[4] in ("EFBIG", "ENOSPC")


def test_processes_are_capped(docker_backend: DockerBackend) -> None:
    code = (
        "import os, time\n"
        "children = 0\n"
        "for _ in range(50):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(5); os._exit(0)\n"
        "        children += 1\n"
        "    except OSError:\n"
        "        break\n"
        "print(children)\n"
    )
    result = run(docker_backend, code, limits=Limits(processes=8))
    assert result.status is Status.ok, result.stderr
    assert 0 < int(result.stdout) < 8


def test_wall_time_kills_the_container(docker_backend: DockerBackend) -> None:
    result = run(docker_backend, "import time; print('start', flush=True); time.sleep(60)", limits=Limits(wall_time_s=1))
    assert (result.status, result.exit_code, result.stdout) == (Status.timeout, None, "start\n")
    assert 1 <= result.duration_s < 10


def test_cpu_time_is_a_timeout(docker_backend: DockerBackend) -> None:
    result = run(docker_backend, "while True: pass", limits=Limits(cpu_time_s=1, wall_time_s=30))
    assert (result.status, result.exit_code) == (Status.timeout, None)
    assert result.duration_s < 20


def test_memory_over_the_limit_is_reported_from_the_oom_kill(docker_backend: DockerBackend) -> None:
    result = run(docker_backend, "x = bytearray(300 * 2**20); print('survived')", limits=Limits(memory_mb=100))
    assert (result.status, result.exit_code, result.stdout) == (Status.memory, None, "")


def test_output_over_the_cap_stops_the_program(docker_backend: DockerBackend) -> None:
    code = "import sys\nsys.stderr.write('e')\nwhile True:\n    sys.stdout.write('x' * 4096)\n"
    result = run(docker_backend, code, limits=Limits(output_bytes=50_000, wall_time_s=30))
    assert (result.status, result.exit_code) == (Status.output_limit, None)
    assert result.stdout == "x" * 50_000 and result.stdout_truncated
    assert (result.stderr, result.stderr_truncated) == ("e", False)
    assert result.duration_s < 10


def test_exit_codes_and_signals_are_the_programs(docker_backend: DockerBackend) -> None:
    exited = run(docker_backend, "raise SystemExit(3)")
    killed = run(docker_backend, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert (exited.status, exited.exit_code) == (Status.error, 3)
    # A SIGKILL long before the CPU limit could fire is the program's own doing, not a timeout.
    assert (killed.status, killed.exit_code) == (Status.error, -9)


def test_printing_a_fake_verdict_changes_nothing(docker_backend: DockerBackend) -> None:
    code = "import sys; print('{\"status\": \"ok\", \"exit_code\": 0}'); sys.stdout.flush(); raise SystemExit(7)"
    result = run(docker_backend, code)
    assert (result.status, result.exit_code) == (Status.error, 7)


def run_three_endings(backend: DockerBackend) -> None:
    run(backend, "print('ok')")
    run(backend, "import time; time.sleep(60)", limits=Limits(wall_time_s=0.5))
    run(backend, "while True: print('x' * 1000)", limits=Limits(output_bytes=10_000))


def test_no_container_is_left_after_runs_that_end_in_any_way(cold_backend: DockerBackend) -> None:
    run_three_endings(cold_backend)
    assert containers_of(cold_backend) == []


def test_spares_are_only_idle_containers_and_close_removes_them() -> None:
    backend = _backend_or_skip()
    try:
        run_three_endings(backend)
        run(backend, "print('ok')")
        time.sleep(1)  # let the spare for the last run's limits start
        left = containers_of(backend)
        assert 1 <= len(left) <= 4 and {c["State"] for c in left} == {"running"}, left
    finally:
        backend.close()
    assert containers_of(backend) == []


def test_runs_on_spares_start_from_a_fresh_working_dir(docker_backend: DockerBackend) -> None:
    code = "import os; print(sorted(os.listdir('.'))); open('left_behind', 'w').write('x')"
    first, second = run(docker_backend, code), run(docker_backend, code)
    assert first.stdout == second.stdout == "['main.py']\n"


def test_a_failure_mid_run_still_removes_the_container(
    cold_backend: DockerBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_pump(*args: object) -> None:
        raise RuntimeError("injected failure while the container runs")

    monkeypatch.setattr("sandbox._docker.pump", broken_pump)
    with pytest.raises(RuntimeError, match="injected"):
        run(cold_backend, "import time; time.sleep(60)")
    assert containers_of(cold_backend) == []


def test_a_program_still_running_after_its_output_ended_is_killed_at_the_deadline(
    cold_backend: DockerBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    def output_ends_at_once(sock: socket.socket, stdin: bytes, deadline: float, output_cap: int) -> Streams:
        sock.sendall(stdin)  # the request reaches the program; then we stop reading as if at end of stream
        return Streams(output_cap)

    monkeypatch.setattr("sandbox._docker.pump", output_ends_at_once)
    result = run(cold_backend, "import time; time.sleep(60)", limits=Limits(wall_time_s=0.5))
    assert (result.status, result.exit_code) == (Status.timeout, None)
    assert result.duration_s < 10
    assert containers_of(cold_backend) == []


def test_bad_file_paths_are_rejected_before_any_container(docker_backend: DockerBackend) -> None:
    for path in ("../escape.py", "/etc/passwd", "a/../../b"):
        with pytest.raises(ValueError, match="relative path inside the working dir"):
            run(docker_backend, "pass", files={path: "x"})


def test_concurrent_runs_are_isolated_from_each_other(docker_backend: DockerBackend) -> None:
    code = "import os, sys; print(sorted(os.listdir('.')), sys.stdin.read())"
    results: dict[int, ExecResult] = {}

    def one(index: int) -> None:
        results[index] = run(docker_backend, code, files={f"only_{index}.txt": ""}, stdin=str(index).encode())

    threads = [threading.Thread(target=one, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {index: result.stdout for index, result in results.items()} == {
        index: f"['main.py', 'only_{index}.txt'] {index}\n" for index in range(4)
    }


def test_close_sweeps_containers_an_interrupted_run_left(docker_backend: DockerBackend) -> None:
    backend = DockerBackend()
    client = docker.from_env(version="auto")
    try:
        label_key, label_value = backend.session_label.split("=", 1)
        client.api.create_container(backend._image, command=["true"], labels={label_key: label_value})
        assert len(containers_of(backend)) == 1
        backend.close()
        assert containers_of(backend) == []
    finally:
        client.close()
    assert label_key == CONTAINER_LABEL
