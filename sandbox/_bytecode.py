"""Bytecode for the programs the sandbox runs: compiled once where Python keeps it, not at every cold start.

A cold sandbox used to compile its fork server (1,300 lines) and a tracer job its program (1,000) every time: a
quarter of `semcoder trace-batch`'s sandbox start. The host's own bytecode files (pip writes them at install; made
here when missing and bytecode may be written) go in instead, and the sandbox's interpreter checks them against the
source as any import does: one that is stale or of another Python is compiled over, in memory, as before.
"""

from __future__ import annotations

import functools
import importlib.util
import py_compile
import sys
from pathlib import Path

_CHECKED_HASH = (3).to_bytes(4, "little")  # PEP 552 flags: hash-based, checked against the source


@functools.cache
def cached_bytecode(source: Path) -> str | None:
    """The bytecode file of `source` for this interpreter (its __pycache__ file), written now if it is missing or stale
    and bytecode may be written (not under PYTHONDONTWRITEBYTECODE); None if there is none to use."""
    cached = importlib.util.cache_from_source(str(source))
    try:
        with open(cached, "rb") as handle:
            header = handle.read(16)
        stat = source.stat()
    except OSError:
        header, stat = b"", None
    fresh = header[:4] == importlib.util.MAGIC_NUMBER and (
        header[4:8] != b"\0\0\0\0"  # hash-based (SOURCE_DATE_EPOCH builds): the importer checks it
        or (stat is not None and header[8:16] == (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
            + (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")))
    if not fresh and not sys.dont_write_bytecode:
        try:
            py_compile.compile(str(source), cfile=cached, doraise=True)
            fresh = True
        except (py_compile.PyCompileError, OSError):  # a read-only install: compiled in each sandbox instead
            pass
    return cached if fresh else None


@functools.cache
def shipped_bytecode(source: Path, module: str) -> tuple[str, bytes] | None:
    """`source`'s bytecode as a job file for a copy of it shipped as `module`.py: (its path, under __pycache__ with this
    interpreter's tag; a checked hash-based pyc). The importer takes it only for byte-identical source on the same
    Python, and names the code after the copy's path (what compiling the copy gives); None without bytecode."""
    cached = cached_bytecode(source)
    if cached is None:
        return None
    data, text = Path(cached).read_bytes(), source.read_bytes()
    if data[4:8] != b"\0\0\0\0" and data[8:16] != importlib.util.source_hash(text):
        return None  # a hash-based file of another source
    pyc = importlib.util.MAGIC_NUMBER + _CHECKED_HASH + importlib.util.source_hash(text) + data[16:]
    return importlib.util.cache_from_source(f"{module}.py"), pyc
