"""Every path a caller names is resolved (symlinks followed) and must lie under an allowed root.

The caller of an MCP tool is a model acting for a user: it may name any path, so the server touches only what its
owner allowed (`--allowed-root`, SEMCODER_ALLOWED_ROOTS, else the directory it was started in). A relative path
is taken relative to the first allowed root, the directory an MCP host usually starts the server in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mcp.server.mcpserver.exceptions import ToolError

Kind = Literal["file", "dir", "any"]


def allowed_path(given: str, roots: list[Path], kind: Kind = "any") -> Path:
    """The resolved path; ToolError (an isError result, not a crash) when it does not exist, is not of `kind`, or
    resolves outside every root."""
    if not roots:
        raise ToolError("this server allows no paths (no allowed roots configured)")
    if not given or "\0" in given:
        raise ToolError(f"{given!r} is not a path")
    path = Path(given).expanduser()
    if not path.is_absolute():
        path = roots[0] / path
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError:
        raise ToolError(f"no such file or directory: {given}") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise ToolError(f"cannot resolve {given}: {exc}") from None
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        shown = f"{given} (resolves to {resolved})" if str(resolved) != given else given
        raise ToolError(f"{shown} is outside the allowed roots ({', '.join(map(str, roots))}); the server's owner "
                        "can allow it with --allowed-root DIR or SEMCODER_ALLOWED_ROOTS")
    if kind == "file" and not resolved.is_file():
        raise ToolError(f"{given} is not a file")
    if kind == "dir" and not resolved.is_dir():
        raise ToolError(f"{given} is not a directory")
    return resolved


PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", ".git")


def project_of(test_file: Path, roots: list[Path]) -> Path:
    """The project a test file belongs to: the nearest directory above it with a project marker (pyproject.toml,
    setup.py, pytest.ini, .git, ...) that is still under its allowed root, else the file's own directory."""
    root = next(r for r in roots if test_file == r or test_file.is_relative_to(r))
    for directory in test_file.parents:
        if directory != root and not directory.is_relative_to(root):
            break
        if any((directory / marker).exists() for marker in PROJECT_MARKERS):
            return directory
    return test_file.parent
