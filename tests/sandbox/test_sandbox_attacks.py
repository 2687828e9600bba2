"""Attack programs, each judged by evidence on the HOST (a listener, a file, the process table).

Every test runs once per backend (see conftest.py); whatever the program prints is only data.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import ExecRequest, Limits, Pool, Status

SET_PROCESS_NAME = (
    "import ctypes\n"
    "def set_name(name):\n"
    "    ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)\n"
)


def host_ipv4_addresses() -> list[str]:
    """Every IPv4 address of this host (loopback included), via SIOCGIFADDR."""
    addresses = []
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(probe.fileno(), 0x8915, request)  # SIOCGIFADDR
            except OSError:
                continue
            addresses.append(socket.inet_ntoa(answer[20:24]))
    finally:
        probe.close()
    return addresses or ["127.0.0.1"]


@pytest.fixture
def listeners() -> Iterator[tuple[socket.socket, socket.socket, int]]:
    """A TCP and a UDP socket on every host address, same port; nothing may ever reach them."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", 0))
    tcp.listen(16)
    port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", port))
    yield tcp, udp, port
    tcp.close()
    udp.close()


def test_no_network_reaches_the_host_and_no_dns(sandboxed, listeners, fast_limits) -> None:
    tcp, udp, port = listeners
    code = (
        "import socket, sys\n"
        "port = int(sys.argv[1])\n"
        "for host in sys.argv[2:]:\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=0.5).sendall(b'escaped')\n"
        "    except OSError as exc:\n"
        "        print('tcp', host, type(exc).__name__)\n"
        "    try:\n"
        "        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'escaped', (host, port))\n"
        "    except OSError as exc:\n"
        "        print('udp', host, type(exc).__name__)\n"
        "try:\n"
        "    print('resolved', socket.getaddrinfo('example.com', 80))\n"
        "except OSError as exc:\n"
        "    print('dns failed', type(exc).__name__)\n"
    )
    request = ExecRequest(code=code, argv=[str(port), *host_ipv4_addresses()], limits=fast_limits)
    result = sandboxed(request)
    assert result.status is Status.ok, result.stderr
    tcp.settimeout(0.3)
    with pytest.raises(TimeoutError):
        tcp.accept()
    udp.settimeout(0.3)
    with pytest.raises(TimeoutError):
        udp.recvfrom(64)
    assert "resolved" not in result.stdout
    assert "dns failed" in result.stdout


def test_host_files_and_environment_secrets_stay_hidden(sandboxed, tmp_path, monkeypatch) -> None:
    secret = "semcoder-secret-" + uuid.uuid4().hex
    monkeypatch.setenv("SEMCODER_SANDBOX_SECRET", secret)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(secret)
    repo_file = Path(__file__).resolve()
    code = (
        "import os, sys\n"
        "print(dict(os.environ))\n"
        "for path in sys.argv[1:] + ['/proc/self/environ', '/proc/1/environ', f'/proc/{os.getppid()}/environ',\n"
        "                            '/etc/shadow', '/root/.bash_history']:\n"
        "    try:\n"
        "        print(path, open(path, 'rb').read()[:100000])\n"
        "    except OSError as exc:\n"
        "        print(path, 'denied', type(exc).__name__)\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n"
        "        print(pid, open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except OSError:\n"
        "        pass\n"
    )
    result = sandboxed(ExecRequest(code=code, argv=[str(secret_file), f"/proc/{os.getpid()}/environ",
                                                     str(repo_file)]))
    assert result.status is Status.ok, result.stderr
    assert secret not in result.stdout + result.stderr
    assert "judged by evidence on the HOST" not in result.stdout  # this very file's docstring


def test_writes_outside_the_working_dir_do_not_reach_the_host(sandboxed, tmp_path) -> None:
    tag = uuid.uuid4().hex
    targets = [tmp_path / "escape.txt", Path(f"/tmp/semcoder-escape-{tag}"), Path(f"/root/semcoder-escape-{tag}"),
               Path(__file__).resolve().parent / f"escape-{tag}"]
    code = (
        "import sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        open(path, 'w').write('escaped')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('denied', path, type(exc).__name__)\n"
    )
    result = sandboxed(ExecRequest(code=code, argv=[str(t) for t in targets]))
    assert result.status is Status.ok, result.stderr
    assert [t for t in targets if t.exists()] == []


def test_symlinks_do_not_escape(sandboxed, tmp_path) -> None:
    secret = "semcoder-linked-" + uuid.uuid4().hex
    host_secret = tmp_path / "linked-secret.txt"
    host_secret.write_text(secret)
    host_target = tmp_path / "written-through-link.txt"
    code = (
        "import os, sys\n"
        "os.symlink(sys.argv[1], 'read_link')\n"
        "os.symlink(sys.argv[2], 'write_link')\n"
        "os.symlink('/', 'root_link')\n"
        "for action in (lambda: print(open('read_link').read()),\n"
        "               lambda: open('write_link', 'w').write('escaped'),\n"
        "               lambda: print(os.listdir('root_link/' + sys.argv[3]))):\n"
        "    try:\n"
        "        action()\n"
        "    except OSError as exc:\n"
        "        print('denied', type(exc).__name__)\n"
    )
    result = sandboxed(ExecRequest(code=code, argv=[str(host_secret), str(host_target), str(tmp_path)]))
    assert result.status is Status.ok, result.stderr
    assert secret not in result.stdout
    assert not host_target.exists()
    assert "linked-secret.txt" not in result.stdout


def test_fork_bomb_is_contained(sandboxed, marker, host_processes_named) -> None:
    code = SET_PROCESS_NAME + (
        "import os, sys\n"
        "set_name(sys.argv[1])\n"
        "while True:\n"
        "    try:\n"
        "        os.fork()\n"
        "    except OSError:\n"
        "        pass\n"
    )
    limits = Limits(wall_time_s=2, cpu_time_s=2, processes=16)
    result = sandboxed(ExecRequest(code=code, argv=[marker], limits=limits))
    assert result.status is Status.timeout, result.stderr
    assert host_processes_named(marker) == []
    assert subprocess.run([sys.executable, "-c", "pass"], timeout=30).returncode == 0  # the host can still fork


def test_memory_bomb_reports_memory_and_the_host_stays_healthy(sandboxed) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))\n"
    result = sandboxed(code, limits=Limits(memory_mb=128, wall_time_s=20))
    assert result.status is Status.memory
    assert result.exit_code is None
    assert len(bytearray(64 * 1024 * 1024)) > 0


def test_cpu_burn_in_threads_is_stopped_by_the_cpu_limit(sandboxed) -> None:
    code = (
        "import threading\n"
        "def burn():\n"
        "    while True:\n"
        "        pass\n"
        "for _ in range(4):\n"
        "    threading.Thread(target=burn, daemon=True).start()\n"
        "burn()\n"
    )
    result = sandboxed(code, limits=Limits(cpu_time_s=1, wall_time_s=30))
    assert result.status is Status.timeout
    assert result.duration_s < 15  # the CPU limit fired, not the wall clock


def test_output_flood_is_capped(sandboxed) -> None:
    result = sandboxed("while True:\n    print('x' * 1000)\n", limits=Limits(output_bytes=10_000, wall_time_s=10))
    assert result.status is Status.output_limit
    assert result.stdout_truncated
    assert 0 < len(result.stdout) <= 10_000


def test_disk_fill_fails_inside_the_sandbox(sandboxed) -> None:
    code = (
        "import os\n"
        "results = []\n"
        "def fill(paths):\n"
        "    written = 0\n"
        "    try:\n"
        "        for path in paths:\n"
        "            with open(path, 'ab') as handle:\n"
        "                for _ in range(4):\n"
        "                    handle.write(b'x' * 1024 * 1024)\n"
        "                    handle.flush()\n"
        "                    written += 1\n"
        "    except OSError as exc:\n"
        "        return f'stopped {type(exc).__name__} {exc.errno}'\n"
        "    return f'wrote {written} MiB'\n"
        "print('one file', fill(['big'] * 4))\n"
        "os.remove('big')\n"
        "print('many files', fill([f'small{i}' for i in range(6)]))\n"
    )
    result = sandboxed(code, limits=Limits(file_size_mb=8, wall_time_s=20))
    assert result.status is Status.ok, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("one file stopped"), lines  # 16 MiB into one file: EFBIG
    assert lines[1].startswith("many files stopped"), lines  # 24 MiB in all: ENOSPC


def test_a_daemon_does_not_outlive_the_run(sandboxed, marker, host_processes_named) -> None:
    code = SET_PROCESS_NAME + (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        set_name(sys.argv[1])\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(0.2)\n"
        "print('parent done')\n"
    )
    result = sandboxed(ExecRequest(code=code, argv=[marker]))
    assert (result.status, result.stdout) == (Status.ok, "parent done\n")
    deadline = time.monotonic() + 2
    while host_processes_named(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes_named(marker) == []


def test_signalling_the_parent_does_not_break_the_sandbox(backend) -> None:
    code = (
        "import os, signal\n"
        "for target in (os.getppid(), 1, -1):\n"
        "    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):\n"
        "        try:\n"
        "            os.kill(target, sig)\n"
        "        except OSError:\n"
        "            pass\n"
        "print('survived')\n"
    )
    with Pool(workers=1, backend=backend) as pool:
        attack = pool.submit(ExecRequest(code=code, limits=Limits(wall_time_s=5))).result()
        control = pool.submit(ExecRequest(code="print(6 * 7)")).result()
    assert attack.status in (Status.ok, Status.error)
    assert (control.status, control.stdout) == (Status.ok, "42\n")


@pytest.fixture
def host_process(marker: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    yield process
    process.kill()
    process.wait()


def test_host_processes_are_neither_listed_nor_traced(sandboxed, host_process, marker) -> None:
    code = (
        "import ctypes, os, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "pids = [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
        "seen = [p for p in pids if sys.argv[1].encode() in open(f'/proc/{p}/cmdline', 'rb').read()]\n"
        "print('seen', seen)\n"
        "attached = [p for p in seen + [int(sys.argv[2])] if libc.ptrace(16, p, 0, 0) == 0]\n"
        "print('attached', attached)\n"
    )
    result = sandboxed(ExecRequest(code=code, argv=[marker, str(host_process.pid)]))
    assert result.status is Status.ok, result.stderr
    assert "seen []" in result.stdout
    assert "attached []" in result.stdout
    status = Path(f"/proc/{host_process.pid}/status").read_text()
    assert "TracerPid:\t0" in status
    assert host_process.poll() is None


def test_namespace_mount_and_keyring_syscalls_are_denied(sandboxed) -> None:
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "calls = {'unshare_user': lambda: libc.unshare(0x10000000),\n"
        "         'mount': lambda: libc.mount(b'none', b'/tmp', b'tmpfs', 0, None),\n"
        "         'keyctl': lambda: libc.syscall(250, 0, 0, 0, 0, 0),\n"
        "         'bpf': lambda: libc.syscall(321, 0, 0, 0)}\n"
        "for name, call in calls.items():\n"
        "    print(name, call(), os.strerror(ctypes.get_errno()))\n"
    )
    result = sandboxed(code)
    assert result.status is Status.ok, result.stderr
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["-1"] * 4, result.stdout


def test_a_harmless_program_runs_normally(sandboxed) -> None:
    code = "import json, sys\ndata = json.loads(sys.stdin.read())\nprint(sum(data), len(data))\n"
    result = sandboxed(code, stdin=b"[1, 2, 3]")
    assert (result.status, result.exit_code, result.stdout, result.stderr) == (Status.ok, 0, "6 3\n", "")
