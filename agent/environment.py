"""The project's own Python environment: where its tests run, so they see its pinned pytest, plugins and packages.

Order: `--python PATH` (an interpreter or a venv), else `$VIRTUAL_ENV`, `.venv/`, `venv/` or `env/` at the
project root, a poetry environment (`poetry env info -p`, when the project uses poetry and poetry is on PATH),
else semcoder's own interpreter. semcoder needs no install in that environment: the sandbox runs the chosen
interpreter with the project's site-packages, and ships its own in-sandbox programs (Python 3.8+) as files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from agent.tasks import TaskError

Source = Literal["--python", "VIRTUAL_ENV", ".venv", "venv", "env", "poetry", "semcoder"]
_LOCAL_VENVS: tuple[Source, ...] = (".venv", "venv", "env")


class Environment(BaseModel):
    """Which interpreter runs the project's tests (None: semcoder's own)."""

    python: str | None = Field(None, description="An interpreter or venv path; None means semcoder's own.")
    source: Source = "semcoder"

    def describe(self) -> str:
        if self.python is None:
            return f"semcoder's own Python {sys.version.split()[0]} ({sys.executable}); no project environment found"
        return f"{self.python} (from {self.source})"


def detect(root: Path | None, explicit: str | None = None, *, activated: bool = True) -> Environment:
    """The environment a project's tests should run in (see the module's docstring).

    `activated`: whether $VIRTUAL_ENV counts (the user's shell activated it for the project); a server's own
    $VIRTUAL_ENV is semcoder's, so `semcoder serve` detects without it.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        try:
            usable = (path.is_dir() and _interpreter(path)) or (path.is_file() and os.access(path, os.X_OK))
        except (OSError, ValueError):  # a name too long, a NUL byte: not a path at all
            usable = False
        if not usable:
            raise TaskError(f"--python {explicit}: not an interpreter or a virtual environment "
                            "(a folder with bin/python)")
        return Environment(python=str(path.absolute()), source="--python")
    active = os.environ.get("VIRTUAL_ENV") if activated else None
    if active and _interpreter(Path(active)):
        return Environment(python=active, source="VIRTUAL_ENV")
    if root is not None:
        for name in _LOCAL_VENVS:
            candidate = root / name
            if (candidate / "pyvenv.cfg").is_file() and _interpreter(candidate):
                return Environment(python=str(candidate.absolute()), source=name)
        poetry = _poetry_env(root)
        if poetry is not None:
            return Environment(python=poetry, source="poetry")
    return Environment()


def _interpreter(venv: Path) -> Path | None:
    return next((venv / "bin" / n for n in ("python", "python3") if (venv / "bin" / n).exists()), None)


def _poetry_env(root: Path) -> str | None:
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or "[tool.poetry" not in pyproject.read_text(errors="replace"):
        return None
    poetry = shutil.which("poetry")
    if poetry is None:
        return None
    try:
        out = subprocess.run([poetry, "env", "info", "-p"], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = out.stdout.strip()
    return path if out.returncode == 0 and path and _interpreter(Path(path)) else None
