"""patch: turn the model's answers and/or mutants of the best attempt into untested candidates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.localize import Suspect
from agent.mutation import mutants_at
from agent.nodes import NodeDeps, candidate_key
from agent.parsing import ParseError, parse_refined
from agent.splice import SpliceError, apply_refined
from agent.state import Attempt, Candidate, Focus, RunConfig
from agent.tasks import Task


def patch(state: Mapping[str, Any], deps: NodeDeps) -> dict[str, Any]:
    task, config, best = Task(**state["task"]), RunConfig(**state["config"]), Attempt(**state["best"])
    seen = set(state.get("tried") or [])
    candidates, notes = [], []
    if config.uses_model:
        candidates, notes = model_candidates(state.get("completions") or [], best, Focus(**state["focus"]))
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
        update["fruitless"] = [f"{focus['file']}::{focus['function']}"]
    return update


def model_candidates(completions: list[dict[str, str]], best: Attempt, focus: Focus) -> tuple[list[Candidate], list[str]]:
    """Each answer's refined code, spliced into the focus file; unusable answers are noted, not raised."""
    candidates, notes = [], []
    for index, completion in enumerate(completions):
        code = parse_refined(completion["text"], finish_reason=completion["finish_reason"])
        if isinstance(code, ParseError):
            notes.append(f"sample {index}: {code.problem}: {code.detail}")
            continue
        try:
            patched = apply_refined(best.files[focus.file], code, None if focus.whole_file else focus.function)
        except SpliceError as exc:
            notes.append(f"sample {index}: {exc}")
            continue
        candidates.append(Candidate(files={**best.files, focus.file: patched}, origin=f"model sample {index}"))
    return candidates, notes


def mutation_candidates(task: Task, best: Attempt, suspects: list[Suspect], seen: set[str],
                        limit: int) -> list[Candidate]:
    """Untested mutants at the most suspicious lines first, at most `limit`."""
    found: list[Candidate] = []
    for suspect in suspects:
        for mutant in mutants_at(suspect.file, best.files[suspect.file], suspect.line):
            files = {**best.files, suspect.file: mutant.source}
            if candidate_key(files) not in seen:
                found.append(Candidate(files=files, origin=f"mutation {suspect.file} {mutant.description}"))
                if len(found) >= limit:
                    return found
    return found
