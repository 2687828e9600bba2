"""A request's tree: a host directory the run sees read-only, laid out around the request's own files.

`ExecRequest.tree` names a directory on the host (a user's project). The sandbox binds it read-only at
TREE_IN_SANDBOX and the run's working dir mirrors it: the request's files are written as usual, and every other
entry of the tree appears at its own relative path as a symlink, made by this rule (`links`):

* a directory is *real* in the working dir when it holds one of the request's files (at any depth): it is made
  as a directory and its entries in the tree are looked at one by one, by the same rule;
* any other entry of a real directory (a file, a directory holding none of the request's files) becomes one
  symlink to its path in the read-only tree (`/project/data`, `/project/tests/fixtures`); what lies beneath it
  is never listed, read or copied, so a job's cost grows with the entries of the real directories only, never
  with the size of the rest;
* an entry that is itself a symlink stays a symlink: one that resolves inside the tree is made relative (its
  target resolved, then written relative to its own directory), so it reaches the same entry of the working dir
  (the candidate's file where it names one); one that resolves outside the tree is left out (the sandbox shows
  nothing outside the tree);
* bytecode caches (`__pycache__`) are left out: a cached module must never stand in for the request's source.

Symlinks beneath a linked directory are the tree's own and resolve inside the sandbox: relative ones within the
tree work, absolute ones and ones leaving the tree do not reach their host targets. Writes through a link fail
(EROFS or EACCES: the tree is read-only, and the run's uid reads it as "other", so entries not readable by other
users are not readable there either); new files go into the real directories or /tmp.
"""

from __future__ import annotations

import functools
import os
import posixpath
import time
from collections.abc import Iterable

from sandbox._errors import SandboxError

TREE_IN_SANDBOX = "/project"
LEFT_OUT = frozenset({"__pycache__"})
_RACY_NS = 2_000_000_000


def links(tree: str, paths: Iterable[str], mount: str = TREE_IN_SANDBOX) -> dict[str, str]:
    """Working-dir path -> symlink target for every entry of `tree` that the request's files (`paths`) do not
    provide, by the rule above; `mount`: where the run sees the tree (its host path where nothing is bound)."""
    real_root = os.path.realpath(tree)
    real_dirs = _real_dirs(frozenset(paths))
    # A folder's mtime changes whenever an entry is added, removed or renamed (a link re-pointed included): the
    # listing is reused only while every real folder is as it was (a long-lived server sees a user's edits).
    stamps = tuple(_mtime(os.path.join(real_root, directory)) for directory in real_dirs)
    # As git does for its index: a folder changed within the last seconds may change again within the same mtime
    # tick, so its listing is not reused.
    racy = any(stamp is not None and time.time_ns() - stamp < _RACY_NS for stamp in stamps)
    listed = _links.__wrapped__ if racy else _links
    return dict(listed(tree, real_root, frozenset(paths), real_dirs, mount, stamps))


@functools.lru_cache(maxsize=64)
def _real_dirs(paths: frozenset[str]) -> tuple[str, ...]:
    """The folders that hold a request file, at any depth: the working dir's real folders ("" is its root)."""
    real_dirs = {""}
    for path in paths:
        parent = posixpath.dirname(path)
        while parent not in real_dirs:
            real_dirs.add(parent)
            parent = posixpath.dirname(parent)
    return tuple(sorted(real_dirs))


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


@functools.lru_cache(maxsize=64)  # a run's workspaces mostly share their paths: the tree is listed once per shape
def _links(tree: str, real_root: str, paths: frozenset[str], real_dirs: tuple[str, ...], mount: str,
           stamps: tuple[int | None, ...]) -> tuple[tuple[str, str], ...]:
    if not os.path.isdir(real_root):
        raise SandboxError(f"the request's tree {tree} is not a directory on this host")
    found: list[tuple[str, str]] = []
    real = frozenset(real_dirs)
    for directory in real_dirs:
        try:
            entries = sorted(os.scandir(os.path.join(real_root, directory)), key=lambda entry: entry.name)
        except (NotADirectoryError, FileNotFoundError):
            continue  # a directory only the request's files have
        except OSError as exc:
            raise SandboxError(f"cannot list {os.path.join(tree, directory)} of the request's tree: {exc}") from exc
        for entry in entries:
            relative = posixpath.join(directory, entry.name)
            if relative in paths or relative in real or entry.name in LEFT_OUT:
                continue
            if entry.is_symlink():
                resolved = os.path.realpath(entry.path)
                if resolved != real_root and not resolved.startswith(real_root + os.sep):
                    continue  # outside the tree: left out
                inside = os.path.relpath(resolved, real_root).replace(os.sep, "/")
                found.append((relative, posixpath.relpath(inside, directory or ".")))
            else:
                found.append((relative, f"{mount}/{relative}"))
    return tuple(found)
