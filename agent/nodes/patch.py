"""patch: turn the model's answers and/or mutants of the best attempt into untested candidates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.edits import EditFormat, EditResult, EditTarget, apply_edit, chosen_format
from agent.localize import Suspect
from agent.mutation import mutants_at
from agent.nodes import NodeDeps, candidate_key
from agent.persistence import load_task
from agent.state import Attempt, Candidate, Focus, RunConfig
from agent.tasks import Task


def patch(state: Mapping[str, Any], deps: NodeDeps) -> dict[str, Any]:
    task, config, best = load_task(state, deps.snapshots), RunConfig(**state["config"]), Attempt(**state["best"])
    seen = set(state.get("tried") or [])
    candidates: list[Candidate] = []
    answers: dict[str, Any] = {}
    if config.uses_model:
        focus = Focus(**state["focus"])
        fmt = chosen_format(config.edit_format, config.prompt_dialect, current(task, best, focus.file))
        candidates, results = model_candidates(state.get("completions") or [], best, focus, task, fmt)
        answers = answers_entry(fmt, results)
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
        "history": [{"node": "patch", "candidates": [c.origin for c in fresh.values()], "rejected": [],
                     **answers}]}
    if config.uses_model and state.get("focus") and not any(c.origin.startswith("model") for c in fresh.values()) \
            and not (answers.get("feedback") and config.prompt_dialect == "chat" and not previous_feedback(state)):
        # Every answer was unusable or changed nothing: look elsewhere next. An answer a chat model can correct
        # from the note it gets (a block that did not match) is a slip of form: the same focus once more.
        focus = state["focus"]
        update["fruitless"] = [f"{focus['file']}::{focus['function']}", *focus.get("also", [])]
    return update


def answers_entry(fmt: EditFormat, results: list[EditResult]) -> dict[str, Any]:
    """What the history keeps of a step's answers: the format, the problems of those that could not be applied
    (the first is fed back when none could), fallbacks taken, and the answers' reasoning."""
    entry: dict[str, Any] = {"edit_format": fmt, "rejected": [
        f"sample {i}: {r.problem.kind}: {r.problem.message}" for i, r in enumerate(results) if r.problem]}
    if results and all(r.problem for r in results):
        entry["feedback"] = results[0].problem.message  # type: ignore[union-attr]
    if fallbacks := [f"sample {i}: {note}" for i, r in enumerate(results) for note in r.notes]:
        entry["fallbacks"] = fallbacks
    if any(r.reasoning for r in results):
        entry["reasoning"] = [r.reasoning for r in results]
    return entry


def previous_feedback(state: Mapping[str, Any]) -> str:
    """The problem of the last patch step's answers, none of which could be applied ('' if one could)."""
    last = next((h for h in reversed(state.get("history") or []) if h.get("node") == "patch"), {})
    return last.get("feedback", "")


def current(task: Task, best: Attempt, path: str) -> str:
    """A file as the best attempt has it (attempts hold only the files they change)."""
    return best.files.get(path, task.files[path])


def changes(task: Task, files: dict[str, str]) -> dict[str, str]:
    """Only what differs from the original: a state that holds every file of a large project at every step would
    grow with the project, not with the repair."""
    return {path: text for path, text in files.items() if task.files.get(path) != text}


def model_candidates(completions: list[dict[str, str]], best: Attempt, focus: Focus, task: Task,
                     fmt: EditFormat) -> tuple[list[Candidate], list[EditResult]]:
    """Each answer applied in `fmt` to the editable files as the best attempt has them; an answer that cannot be
    applied yields no candidate and its result says why (nothing is raised)."""
    files = {path: current(task, best, path) for path in task.editable}
    target = EditTarget.model_validate(focus, from_attributes=True)
    candidates, results = [], []
    for index, completion in enumerate(completions):
        result = apply_edit(completion["text"], fmt, files, target, finish_reason=completion["finish_reason"])
        results.append(result)
        if result.problem is None:
            candidates.append(Candidate(files=changes(task, {**best.files, **result.files}),
                                        origin=f"model sample {index}"))
    return candidates, results


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
