"""A request's tree (ExecRequest.tree, Job.tree): the host directory a run sees read-only, linked around its files.

Real sandboxes, real files: what the program finds in its working dir, that the tree's symlinks stay symlinks, that
writes into it fail as an OSError the program can catch, and that nothing of the tree is copied or wiped.
"""

from __future__ import annotations

import json
import marshal
import os
import time
from pathlib import Path

import pytest

from sandbox import ExecRequest, Job, Limits, Pool, run
from sandbox._local import LocalBackend
from sandbox._tree import TREE_IN_SANDBOX, _links, links
from sandbox._worker import job_message
from sandbox.job import to_request

LIMITS = Limits(wall_time_s=20, cpu_time_s=20, memory_mb=256)

# Lists the working dir (links with their targets), reads through the links, and tries to write through them.
LOOK = r'''
import errno, json, os
seen = {}
for top, dirs, names in os.walk("."):
    for name in dirs + names:
        path = os.path.relpath(os.path.join(top, name))
        seen[path] = os.readlink(path) if os.path.islink(path) else ("dir" if os.path.isdir(path) else "file")
from pkg.helper import answer
writes = {}
for path in ("data/blob.bin", "data/new.txt", "tests/fixture.bin"):
    try:
        with open(path, "ab") as handle:
            handle.write(b"x")
        writes[path] = "written"
    except OSError as exc:
        writes[path] = errno.errorcode[exc.errno]
with open("tests/fixture.bin", "rb") as handle:
    fixture = handle.read().hex()
print(json.dumps({"seen": seen, "answer": answer(), "fixture": fixture, "writes": writes,
                  "main": os.path.basename(__file__)}))
'''


def make_tree(root: Path) -> Path:
    """A project: a package with a symlinked module, data, a symlinked fixture, a link out of the tree, a bytecode
    cache and a top-level main.py (the program must not take its name)."""
    for folder in ("pkg/__pycache__", "shared", "data/deep", "tests"):
        (root / folder).mkdir(parents=True)
    os.chmod(root, 0o755)  # tmp_path's folders are 0700: the sandbox's uid reads the tree as "other"
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "__pycache__" / "helper.cpython-312.pyc").write_bytes(b"\0stale")
    (root / "shared" / "helper.py").write_text("def answer():\n    return 42\n")
    (root / "pkg" / "helper.py").symlink_to("../shared/helper.py")
    (root / "data" / "blob.bin").write_bytes(bytes([0, 255, 1]))
    (root / "data" / "deep" / "more.bin").write_bytes(b"\1")
    (root / "tests" / "fixture.bin").symlink_to("../data/blob.bin")
    (root / "tests" / "outside").symlink_to("/etc/hostname")
    (root / "main.py").write_text("raise SystemExit('the project main.py, not the program')\n")
    return root


def test_the_tree_is_linked_around_the_files_read_only(backend: str, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "proj")
    result = run(ExecRequest(code=LOOK, files={"pkg/__init__.py": "", "tests/test_x.py": "", "shared/helper.py":
                                               "def answer():\n    return 43\n"}, tree=str(root), limits=LIMITS),
                 backend=backend)
    assert result.ok, result.stderr
    out = json.loads(result.stdout)
    seen = out["seen"]
    # Folders holding the request's files are real; everything else is one link into the read-only tree.
    assert seen["pkg"] == seen["tests"] == seen["shared"] == "dir"
    assert seen["data"] == f"{TREE_IN_SANDBOX}/data" and "data/deep" not in seen  # never listed beneath a link
    assert seen["main.py"] == f"{TREE_IN_SANDBOX}/main.py" and out["main"] == "__main__.py"
    # The tree's own symlinks stay symlinks, relative, so they reach the workspace's version of their target.
    assert seen["pkg/helper.py"] == "../shared/helper.py" and out["answer"] == 43
    assert seen["tests/fixture.bin"] == "../data/blob.bin" and out["fixture"] == "00ff01"
    # A link leaving the tree, and bytecode caches, are left out.
    assert "tests/outside" not in seen and "pkg/__pycache__" not in seen
    # Writing into the tree fails as an ordinary OSError inside the program (read-only; "other" may not write).
    assert set(out["writes"].values()) <= {"EROFS", "EACCES"}, out["writes"]
    assert (root / "data" / "blob.bin").read_bytes() == bytes([0, 255, 1]) and not (root / "data" / "new.txt").exists()


def test_links_cost_the_real_folders_entries_not_the_trees_size(tmp_path: Path) -> None:
    """What a job carries for its tree is the same for a 1 KB and a 200 MB data file: the file is never read."""
    shipped = {}
    for size in (1024, 200 * 1024 * 1024):
        root = tmp_path / f"p{size:010d}"
        (root / "data").mkdir(parents=True)
        with open(root / "data" / "big.bin", "wb") as handle:
            handle.truncate(size)  # sparse: no 200 MB written to the shared machine's disk
        request = ExecRequest(code="print(open('data/big.bin', 'rb').read(4))", files={"m.py": ""}, tree=str(root))
        shipped[size] = len(marshal.dumps(job_message(request, LocalBackend().support)))  # what goes down the pipe
        assert links(str(root), request.files) == {"data": f"{TREE_IN_SANDBOX}/data"}
        assert run(request).stdout == "b'\\x00\\x00\\x00\\x00'\n"
    assert shipped[1024] == shipped[200 * 1024 * 1024]


def test_a_pool_worker_binds_each_jobs_tree_and_wipes_links_without_following_them(tmp_path: Path) -> None:
    """Jobs with different trees on one worker each see their own; a link a job made (to the tree, to /) is unlinked
    after it, never followed; a job without a tree may run on the worker and sees no links."""
    first, second = make_tree(tmp_path / "one"), make_tree(tmp_path / "two")
    (second / "data" / "blob.bin").write_bytes(b"two")
    program = ("import os, json\n"
               "def main(data, channel):\n"
               "    for name, target in data.get('make', {}).items():\n"
               "        os.symlink(target, name)\n"
               "    here = sorted(n for n in os.listdir('.') if not n.startswith('_'))\n"
               "    blob = open('data/blob.bin', 'rb').read().hex() if os.path.lexists('data') else None\n"
               "    channel.send({'here': here, 'blob': blob})\n")
    make = {"mine": f"{TREE_IN_SANDBOX}/data", "root": "/", "up": ".."}
    with Pool(workers=1) as pool:
        records = []
        for tree, data in ((first, {"make": make}), (first, {}), (second, {}), (None, {})):
            job = Job(program=program, data=data, files={"pkg/__init__.py": ""}, limits=LIMITS,
                      tree=str(tree) if tree else None)
            result = pool.submit_job(job).result()
            assert result.ok, result.problem
            records.append(result.records[0])
    tree_entries = ["data", "main.py", "pkg", "shared", "tests"]  # the program is __main__.py beside them
    assert records[0] == {"here": sorted([*tree_entries, "mine", "root", "up"]), "blob": "00ff01"}
    assert records[1] == {"here": tree_entries, "blob": "00ff01"}  # the links it made were wiped, nothing else
    assert records[2] == {"here": tree_entries, "blob": "74776f"}  # another tree: a fresh worker that binds it
    assert records[3] == {"here": ["main.py", "pkg"], "blob": None}  # main.py: its program
    for tree in (first, second):
        assert sorted(p.name for p in tree.iterdir()) == ["data", "main.py", "pkg", "shared", "tests"]
        assert (tree / "data" / "deep" / "more.bin").read_bytes() == b"\1"


def test_the_listing_follows_the_trees_changes(tmp_path: Path) -> None:
    """Listings are reused while the real folders are unchanged; an entry added, removed or re-pointed shows."""
    root = make_tree(tmp_path / "proj")
    paths = ["pkg/__init__.py", "tests/test_x.py"]
    for folder in (root, root / "pkg", root / "tests"):  # changed a minute ago: their listing may be reused
        os.utime(folder, ns=(time.time_ns() - 60 * 10**9,) * 2)
    before = links(str(root), paths)
    hits = _links.cache_info().hits
    assert before == links(str(root), paths) and _links.cache_info().hits == hits + 1
    (root / "late.txt").write_text("")
    (root / "tests" / "fixture.bin").unlink()
    (root / "tests" / "fixture.bin").symlink_to("../data/deep/more.bin")
    after = links(str(root), paths)
    assert after["late.txt"] == f"{TREE_IN_SANDBOX}/late.txt"
    assert (before["tests/fixture.bin"], after["tests/fixture.bin"]) == ("../data/blob.bin", "../data/deep/more.bin")


def test_a_job_carries_its_tree_to_the_request() -> None:
    request, _key = to_request(Job(program="def main(data, channel):\n    pass\n", tree="/srv/project/"))
    assert request.tree == "/srv/project"
    with pytest.raises(ValueError, match="must be an absolute path"):
        ExecRequest(code="", tree="relative/dir")
