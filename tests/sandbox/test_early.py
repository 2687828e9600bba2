"""sandbox.start_early: a cold sandbox started before its run is known (sandbox/_early.py). The run that fits takes
it and gives what a fresh sandbox gives; any other starts its own; what no run took is closed at exit, and a sandbox
started on a guess the probe does not confirm is never used."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sandbox import Limits, SandboxError, Status, _early, _host, run, start_early
from sandbox._local import LocalBackend

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = "import os, sys\nprint(os.getuid() != 0, sys.flags.isolated, os.getcwd())\n"


@pytest.fixture(autouse=True)
def _no_spare_left():
    yield
    _early._close()  # a spare a test left must not serve the next test's run


def _no_fresh_sandboxes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, *args, **kwargs):
        raise AssertionError("the run started a sandbox of its own")

    monkeypatch.setattr(LocalBackend, "new_worker", refuse)


def test_the_run_that_fits_takes_the_early_sandbox_and_gets_what_a_fresh_one_gives(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = run(PROGRAM)
    start_early()
    spare = _early._spare
    assert spare is not None and spare.alive
    _no_fresh_sandboxes(monkeypatch)
    early = run(PROGRAM)
    assert early.status is Status.ok and early.stdout == fresh.stdout and early.stderr == fresh.stderr
    assert early.isolation == fresh.isolation
    assert _early._spare is None  # taken: the next run starts its own
    with pytest.raises(AssertionError, match="of its own"):
        run(PROGRAM)


def test_a_run_that_does_not_fit_starts_its_own_and_leaves_the_spare(tmp_path: Path) -> None:
    start_early()
    spare = _early._spare
    assert spare is not None
    other_dir = run(PROGRAM, limits=Limits(file_size_mb=8))  # another working dir size
    tree = tmp_path / "project"
    tree.mkdir()
    (tree / "mod.py").write_text("X = 5\n")
    from sandbox import ExecRequest

    with_tree = run(ExecRequest(code="import mod\nprint(mod.X)\n", tree=str(tree)))
    assert other_dir.status is Status.ok and with_tree.stdout == "5\n"
    assert _early._spare is spare and spare.alive  # still there for a run that fits
    assert run(PROGRAM).status is Status.ok and _early._spare is None


def test_a_sandbox_started_on_a_guess_the_probe_does_not_confirm_is_closed_not_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    probed = _host.probe()
    wrong = dataclasses.replace(probed, python_version="0.0.0")  # what a wrong guess would differ in
    monkeypatch.setattr(_host, "assumed", lambda: wrong)
    start_early()
    spare = _early._spare
    assert spare is not None and spare.support != probed
    assert run(PROGRAM).status is Status.ok
    assert _early._spare is None and not spare.alive  # closed, and the run had its own


def test_a_spare_killed_meanwhile_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    start_early()
    spare = _early._spare
    assert spare is not None
    spare.kill()
    result = run("print('still runs')")
    assert result.status is Status.ok and result.stdout == "still runs\n"


def test_start_early_starts_one_at_a_time() -> None:
    start_early()
    first = _early._spare
    start_early()
    assert _early._spare is first


_EXITS_WITH_A_SPARE = textwrap.dedent(
    """
    import json, os
    from sandbox import start_early, _early
    start_early()
    worker = _early._spare
    worker.wait_ready()
    print(json.dumps({"pid": worker._proc.pid, "cgroups": [str(d) for d in worker._slot.dirs.values()]
                      if worker._slot else []}))
    """
)


def test_an_unused_early_sandbox_is_closed_at_exit_with_its_cgroups() -> None:
    done = subprocess.run([sys.executable, "-c", _EXITS_WITH_A_SPARE], capture_output=True, text=True, cwd=ROOT,
                          check=True, timeout=120)
    left = json.loads(done.stdout.strip().splitlines()[-1])
    assert not Path(f"/proc/{left['pid']}").exists()  # bwrap and the pid namespace under it are gone
    assert not any(Path(directory).exists() for directory in left["cgroups"])


def test_a_broken_bwrap_is_met_by_the_run_not_by_start_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """start_early raises nothing; the run probes as always and reports what is wrong, as without an early start."""
    monkeypatch.setenv(_host.BWRAP_ENV, "/nonexistent/bwrap")
    _host._probe.cache_clear()
    try:
        start_early()  # the guess (_host.assumed) fails the same way: no spare, no exception
        assert _early._spare is None
        with pytest.raises(SandboxError, match="not an executable file"):
            LocalBackend()  # a run's backend probes
    finally:
        monkeypatch.delenv(_host.BWRAP_ENV)
        _host._probe.cache_clear()


def test_start_early_needs_no_pydantic() -> None:
    code = "import sys; from sandbox import start_early; start_early(); print('pydantic' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False"
