"""patch: turn the model's answers and/or mutants of the best attempt into untested candidates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.localize import Suspect
from agent.mutation import mutants_at
from agent.nodes import NodeDeps, candidate_key
from agent.parsing import ParseError, parse_refined
from agent.persistence import load_task
from agent.splice import SpliceError, apply_refined, split_by_file
from agent.state import Attempt, Candidate, Focus, RunConfig
from agent.tasks import Task


def patch(state: Mapping[str, Any], deps: NodeDeps) -> dict[str, Any]:
    task, config, best = load_task(state, deps.snapshots), RunConfig(**state["config"]), Attempt(**state["best"])
    seen = set(state.get("tried") or [])
    candidates, notes = [], []
    if config.uses_model:
        candidates, notes = model_candidates(state.get("completions") or [], best, Focus(**state["focus"]), task)
    if config.uses_mutation:
        suspects = [Suspect(**s) for s in state.get("suspects") or []]
        candidates += mutation_candidates(task, best, suspects, seen, config.mutants_per_step)
    fresh: dict[str, Candidate] = {}
    for candidate in candidates:
        key = candidate_key(candidate.files)
        if key not in seen and key not in fresh:
            fresh[key] = candidate
    update: dict[str, Any] = {
        "iteration": state.get("iteration", 0) + 1, "completions": [],
        "candidates": [c.model_dump() for c in fresh.values()],
        "history": [{"node": "patch", "candidates": [c.origin for c in fresh.values()], "rejected": notes}]}
    if config.uses_model and state.get("focus") and not any(c.origin.startswith("model") for c in fresh.values()):
        focus = state["focus"]  # every answer was unusable or changed nothing: look elsewhere next
        update["fruitless"] = [f"{focus['file']}::{focus['function']}", *focus.get("also", [])]
    return update


def current(task: Task, best: Attempt, path: str) -> str:
    """A file as the best attempt has it (attempts hold only the files they change)."""
    return best.files.get(path, task.files[path])


def changes(task: Task, files: dict[str, str]) -> dict[str, str]:
    """Only what differs from the original: a state that holds every file of a large project at every step would
    grow with the project, not with the repair."""
    return {path: text for path, text in files.items() if task.files.get(path) != text}


def model_candidates(completions: list[dict[str, str]], best: Attempt, focus: Focus,
                     task: Task) -> tuple[list[Candidate], list[str]]:
    """Each answer's refined code, spliced into the focus file; unusable answers are noted, not raised."""
    candidates, notes = [], []
    for index, completion in enumerate(completions):
        code = parse_refined(completion["text"], finish_reason=completion["finish_reason"])
        if isinstance(code, ParseError):
            notes.append(f"sample {index}: {code.problem}: {code.detail}")
            continue
        parts = {focus.file: code} if focus.whole_file else split_by_file(
            code, focus.file, {path: current(task, best, path) for path in task.editable})
        try:
            patched = {path: apply_refined(current(task, best, path), part,
                                           (None if focus.whole_file else focus.function) if path == focus.file else "")
                       for path, part in parts.items() if path != focus.file or len(parts) == 1
                       or any(not line.startswith(("import ", "from ")) for line in part.splitlines() if line.strip())}
        except SpliceError as exc:
            notes.append(f"sample {index}: {exc}")
            continue
        candidates.append(Candidate(files=changes(task, {**best.files, **patched}), origin=f"model sample {index}"))
    return candidates, notes


def mutation_candidates(task: Task, best: Attempt, suspects: list[Suspect], seen: set[str],
                        limit: int) -> list[Candidate]:
    """Untested mutants at the most suspicious lines first, at most `limit`."""
    found: list[Candidate] = []
    for suspect in suspects:
        for mutant in mutants_at(suspect.file, current(task, best, suspect.file), suspect.line):
            files = changes(task, {**best.files, suspect.file: mutant.source})
            if candidate_key(files) not in seen:
                found.append(Candidate(files=files, origin=f"mutation {suspect.file} {mutant.description}"))
                if len(found) >= limit:
                    return found
    return found
