"""Bytecode shipped into the sandbox (sandbox/_bytecode.py): the fork server and the tracer load what the host
compiled, the sandbox's interpreter takes it only for the same source, and what runs is the same."""

from __future__ import annotations

import importlib.util
import marshal
import subprocess
import sys
from pathlib import Path

import pytest

import sandbox
from sandbox import _bytecode, run_job
from sandbox.tracer import TraceOptions, TraceRow, read_traces

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def writable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytecode may be written (CI runs under PYTHONDONTWRITEBYTECODE), and nothing is cached from an earlier test."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    _bytecode.cached_bytecode.cache_clear()
    _bytecode.shipped_bytecode.cache_clear()
    yield
    _bytecode.cached_bytecode.cache_clear()
    _bytecode.shipped_bytecode.cache_clear()


def _import_copy(directory: Path, module: str, source: str, pyc: tuple[str, bytes] | None) -> str:
    """Import `module` from `directory` (the source, and the shipped pyc if any) in a fresh interpreter that writes no
    bytecode of its own; what the module's VALUE is there."""
    (directory / f"{module}.py").write_text(source)
    if pyc is not None:
        (directory / pyc[0]).parent.mkdir(exist_ok=True)
        (directory / pyc[0]).write_bytes(pyc[1])
    done = subprocess.run([sys.executable, "-B", "-I", "-c", f"import sys; sys.path.insert(0, {str(directory)!r}); "
                           f"import {module}; print({module}.VALUE, {module}.where())"],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_shipped_bytecode_is_taken_for_the_same_source_only(writable: None, tmp_path: Path) -> None:
    source = "VALUE = 'source'\ndef where():\n    return where.__code__.co_filename\n"
    original = tmp_path / "orig" / "original.py"
    original.parent.mkdir()
    original.write_text(source)
    name, pyc = _bytecode.shipped_bytecode(original, "copy")
    assert name == importlib.util.cache_from_source("copy.py")
    # Code that says otherwise, under the shipped header, proves which one the importer ran.
    forged = pyc[:16] + marshal.dumps(compile(source.replace("'source'", "'pyc'"), str(original), "exec"))
    runs = {}
    for case, text, shipped in (("plain", source, pyc), ("forged", source, forged),
                                ("changed", source.replace("'source'", "'sourcE'"), forged)):
        (tmp_path / case).mkdir()
        runs[case] = _import_copy(tmp_path / case, "copy", text, (name, shipped)).split()
    assert runs["plain"] == ["source", str(tmp_path / "plain" / "copy.py")]  # named after the copy, as compiled there
    assert runs["forged"] == ["pyc", str(tmp_path / "forged" / "copy.py")]  # the shipped code is what runs...
    assert runs["changed"][0] == "sourcE"  # ...only for byte-identical source


def test_no_bytecode_where_none_may_be_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _bytecode.cached_bytecode.cache_clear()
    _bytecode.shipped_bytecode.cache_clear()
    source = tmp_path / "fresh.py"
    source.write_text("VALUE = 1\n")
    assert _bytecode.cached_bytecode(source) is None and _bytecode.shipped_bytecode(source, "fresh") is None
    assert not (tmp_path / "__pycache__").exists()
    _bytecode.cached_bytecode.cache_clear()
    _bytecode.shipped_bytecode.cache_clear()


FROM_BYTECODE = "\nFROM_BYTECODE = True  # only in the forged bytecode\n"


def test_a_cold_sandbox_runs_the_server_from_its_bytecode(writable: None) -> None:
    """The server's bytecode file is bound beside it: forged code under its genuine header (the source's mtime and
    size) is what a cold sandbox's server runs."""
    from sandbox._worker import _SERVER

    cached = Path(_bytecode.cached_bytecode(_SERVER))
    genuine = cached.read_bytes()
    forged = genuine[:16] + marshal.dumps(compile(_SERVER.read_text() + FROM_BYTECODE, str(_SERVER), "exec"))
    probe = "import sys\nprint(getattr(sys.modules['_semcoder_fork_server'], 'FROM_BYTECODE', False))\n"
    try:
        cached.write_bytes(forged)
        seen = sandbox.run(probe).stdout.strip()
    finally:
        cached.write_bytes(genuine)
    assert seen == "True"
    assert sandbox.run(probe).stdout.strip() == "False"


def test_a_tracer_job_imports_the_tracer_from_the_bytecode_it_was_shipped(writable: None) -> None:
    from sandbox import tracer

    tracer._child_files.cache_clear()
    try:
        job = tracer.tracer_job([TraceRow(code=SEEN, call="f()")], TraceOptions(), ["<semcoder-trace-0>"])
        (name, shipped), = [(name, data) for name, data in job.files.items() if name.endswith(".pyc")]
        source = job.files["_semcoder_tracer.py"]
        forged = shipped[:16] + marshal.dumps(compile(source + FROM_BYTECODE, "_semcoder_tracer.py", "exec"))
        traces = {}
        for case, files in (("shipped", job.files), ("forged", {**job.files, name: forged})):
            traces[case], failed = read_traces(run_job(job.model_copy(update={"files": files})), [TraceRow(
                code=SEEN, call="f()")])
            assert failed is None
    finally:
        tracer._child_files.cache_clear()
    assert traces["shipped"][0].return_repr == "False" and traces["forged"][0].return_repr == "True"
    assert [e.event for e in traces["shipped"][0].events] == ["call", "line", "return"]


SEEN = "import sys\ndef f():\n    return getattr(sys.modules['_semcoder_tracer'], 'FROM_BYTECODE', False)\n"
