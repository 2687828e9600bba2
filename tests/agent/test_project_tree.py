"""A project's real shape: data of any size read in place, symlinks kept, the read-only part failing as an OSError.

Real projects on disk, the real sandbox: `project_task` snapshots only source and config, and every test run sees
the rest of the project read-only and linked at its usual relative path (agent.tasks.project_tree, sandbox/_tree.py).
"""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest
from agent_helpers import write

from agent import tasks
from agent.state import RunConfig
from agent.tasks import TaskError, TestRunner, project_task
from sandbox._worker import job_message
from sandbox.job import to_request

BIG = 200 * 1024 * 1024

CALC = "def double(x):\n    return x + x\n"
READS_DATA = """import os
from calc import double


def test_reads_a_few_bytes_of_the_data():
    assert os.path.islink("data")
    with open("data/big.bin", "rb") as handle:
        assert handle.read(4) == bytes(4)
        handle.seek(-4, os.SEEK_END)
        assert handle.read() == b"tail"
    assert double(2) == 4
"""


class Recording:
    """The session's pool, passing jobs through and keeping them (to measure what each one ships)."""

    def __init__(self, pool) -> None:
        self.pool, self.python, self.jobs = pool, pool.python, []

    def submit_job(self, job, *, urgent: bool = False):
        self.jobs.append(job)
        return self.pool.submit_job(job, urgent=urgent)


def _sparse(path: Path, size: int) -> None:
    """`size` bytes ending in b"tail", written as a sparse file (no 200 MB on the shared machine's disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.seek(size - 4)
        handle.write(b"tail")


def test_a_200_mb_data_file_is_read_in_place_and_the_job_ships_no_more(tmp_path: Path, pool) -> None:
    shipped = {}
    for size in (1024, BIG):
        root = write(tmp_path / f"{size:010d}" / "proj", {"calc.py": CALC, "tests/test_data.py": READS_DATA})
        _sparse(root / "data" / "big.bin", size)
        task = project_task(root)
        assert sorted(task.files) == ["calc.py", "tests/test_data.py"] and task.data == {} and task.notes == []
        recording = Recording(pool)
        report = TestRunner(recording, test_timeout_s=30).run(task, [task.files])[0]
        assert not report.problem and [o.outcome for o in report.outcomes] == ["passed"], report
        support = pool._backend.support
        # The bytes that go down the worker's pipe for each job (the paths' lengths are the same for both sizes).
        shipped[size] = [len(marshal.dumps(job_message(to_request(job)[0], support))) for job in recording.jobs]
    assert shipped[BIG] == shipped[1024], shipped


LINKED = """import errno
import os

import pytest

from pkg.helper import answer


def test_a_symlinked_module_is_a_link_and_imports():
    assert os.readlink("pkg/helper.py") == "../shared/helper.py"
    assert answer() == 42


def test_a_symlinked_fixture_is_a_link_and_reads():
    assert os.readlink("tests/fixture.bin") == "../data/blob.bin"
    with open("tests/fixture.bin", "rb") as handle:
        assert handle.read() == bytes([0, 255])


def test_writing_into_the_read_only_part_is_an_oserror():
    with pytest.raises(OSError) as caught:
        open("data/blob.bin", "ab")
    assert caught.value.errno in (errno.EROFS, errno.EACCES)
    with pytest.raises(OSError):
        open("data/new.txt", "w")
    with open("scratch.txt", "w") as handle:  # the real folders stay writable
        handle.write("ok")


def test_a_link_out_of_the_project_is_left_out():
    assert not os.path.lexists("tests/outside")
"""


def test_symlinks_stay_links_and_the_read_only_part_fails_inside_the_test(tmp_path: Path, pool) -> None:
    root = write(tmp_path / "linked", {"pkg/__init__.py": "", "shared/helper.py": "def answer():\n    return 42\n",
                                       "tests/test_links.py": LINKED})
    (root / "pkg" / "helper.py").symlink_to("../shared/helper.py")
    (root / "data").mkdir()
    (root / "data" / "blob.bin").write_bytes(bytes([0, 255]))
    (root / "tests" / "fixture.bin").symlink_to("../data/blob.bin")
    (root / "tests" / "outside").symlink_to("/etc/hostname")
    task = project_task(root)
    assert "pkg/helper.py" not in task.files and task.editable == ["pkg/__init__.py", "shared/helper.py"]
    assert any("outside the project" in note and "tests/outside" in note for note in task.notes), task.notes
    report = TestRunner(pool, test_timeout_s=30).run(task, [task.files])[0]
    assert not report.problem, report.problem
    assert {o.id.split("::")[1]: o.outcome for o in report.outcomes} == {
        "test_a_symlinked_module_is_a_link_and_imports": "passed",
        "test_a_symlinked_fixture_is_a_link_and_reads": "passed",
        "test_writing_into_the_read_only_part_is_an_oserror": "passed",
        "test_a_link_out_of_the_project_is_left_out": "passed"}, [(o.id, o.message[-300:]) for o in report.outcomes]
    assert not (root / "scratch.txt").exists() and (root / "data" / "blob.bin").read_bytes() == bytes([0, 255])


def test_a_project_with_data_and_links_is_repaired_end_to_end(tmp_path: Path, run_graph) -> None:
    """Baseline, candidates, the whole suite and the independent confirmation all see the data through links."""
    root = write(tmp_path / "shaped", {
        "calc.py": "def double(x):\n    return x + x + 1\n",
        "tests/test_calc.py": "from calc import double\n\n\ndef factor():\n"
                              "    with open('tests/factor.bin', 'rb') as handle:\n        return handle.read()[0]\n\n\n"
                              "def test_two():\n    assert double(1) * factor() == 4\n\n\n"
                              "def test_zero():\n    assert double(0) * factor() == 0\n",
        "docs/index.md": "# not part of the snapshot\n"})
    _sparse(root / "data" / "big.bin", BIG)
    (root / "data" / "factor.bin").write_bytes(bytes([2]))
    (root / "tests" / "factor.bin").symlink_to("../data/factor.bin")
    task = project_task(root)
    assert sorted(task.files) == ["calc.py", "tests/test_calc.py"]
    final = run_graph(task, RunConfig(mutants_per_step=6))
    assert final["status"] == "fixed", final["stop_reason"]
    fixed: dict = {}
    exec(final["best"]["files"]["calc.py"], fixed)
    assert [fixed["double"](x) for x in (0, 1, 5)] == [0, 2, 10]
    assert final["best"]["confirmation"].startswith("2 by the plugin-free runner"), final["best"]["confirmation"]
    assert os.path.islink(root / "tests" / "factor.bin") and (root / "calc.py").read_text().endswith("+ 1\n")


def test_only_source_and_config_count_toward_the_snapshots_limit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tasks, "MAX_PROJECT_BYTES", 2000)
    root = write(tmp_path / "limits", {"calc.py": CALC, "tests/test_data.py": READS_DATA, "docs/guide.md": "x" * 50_000,
                                       "setup.cfg": "[tool:pytest]\n"})
    _sparse(root / "data" / "big.bin", BIG)
    (root / "generated.py").write_text("TABLE = " + "1" * tasks.MAX_SOURCE_FILE_BYTES + "\n")
    (root / "latin.py").write_bytes(b"# \xe9\n")
    task = project_task(root)
    assert sorted(task.files) == ["calc.py", "setup.cfg", "tests/test_data.py"] and task.data == {}
    assert task.notes == [f"not part of the snapshot (over {tasks.MAX_SOURCE_FILE_BYTES} bytes, or not UTF-8): never "
                          "edited, linked as data: generated.py, latin.py"]
    (root / "more.py").write_text("# " + "y" * 2000 + "\n")
    with pytest.raises(TaskError, match=r"more than 2000 bytes of Python source and config .* point at the package"):
        project_task(root)
