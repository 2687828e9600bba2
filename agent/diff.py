"""The reviewable result of a run: a unified diff of the editable files, and applying it."""

from __future__ import annotations

import difflib
from pathlib import Path

from agent.tasks import Task


class ApplyError(RuntimeError):
    """The project changed since the run took its snapshot; applying would overwrite someone's edits."""


def unified_diff(task: Task, files: dict[str, str]) -> str:
    chunks = []
    for path in sorted(files):
        before, after = task.files.get(path, ""), files[path]
        if before != after:
            chunks.extend(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                               fromfile=f"a/{path}", tofile=f"b/{path}"))
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in chunks)


def apply_files(task: Task, files: dict[str, str]) -> list[Path]:
    """Writes the changed files into the project, after checking each still holds the snapshot's text."""
    if task.root is None:
        raise ApplyError("this task has no directory to apply to")
    changed = {path: text for path, text in files.items() if task.files.get(path) != text}
    targets = {path: Path(task.root) / path for path in changed}
    for path, target in targets.items():
        if target.read_text(encoding="utf-8") != task.files[path]:
            raise ApplyError(f"{target} changed since the run started; not applying")
    for path, target in targets.items():
        target.write_text(changed[path], encoding="utf-8")
    return list(targets.values())
