"""reason: the model simulates the failing execution, finds the root cause and writes refined code.

SemCoder answers in one completion (monologue, then [Refined]); the rationale is kept in the state
and the patch node applies the edit it makes (agent/edits.py: a whole function, blocks or a diff).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent import chat_prompts
from agent.edits import chosen_format, instructions
from agent.feedback import refine_input
from agent.localize import function_source, missing_name_source, receiver_context
from agent.nodes import NodeDeps
from agent.nodes.generate import sampling
from agent.nodes.patch import previous_feedback
from agent.persistence import load_task
from agent.state import Attempt, Focus, RunConfig


def shown_code(source: str, function: str | None) -> str:
    """A whole file for function-level tasks; in a project, only the function under repair."""
    return function_source(source, function) if function else source


def reason(state: Mapping[str, Any], deps: NodeDeps) -> dict[str, Any]:
    task, config = load_task(state, deps.snapshots), RunConfig(**state["config"])
    best, focus = Attempt(**state["best"]), Focus(**state["focus"])
    assert deps.model is not None, "routing sends runs without a model past reason"
    source = best.files.get(focus.file, task.files[focus.file])
    code = missing_name_source(source, focus.function) if focus.adds and focus.function else \
        shown_code(source, None if focus.whole_file else focus.function)
    if task.kind == "project" and focus.function and not focus.adds:
        sources = {path: best.files.get(path, task.files[path]) for path in task.editable}
        receiver = receiver_context(sources, focus.call or focus.test_block, source, focus.function)
        code = f"{receiver}\n\n\n{code}" if receiver else code
        for shown in focus.also:  # the next suspects, each under its file's name
            path, _, function = shown.partition("::")
            code += f"\n\n\n# {path}\n" + function_source(sources[path], function)
    fmt = chosen_format(config.edit_format, config.prompt_dialect, source)
    # SemCoder's raw prompt stays as trained (an answer that could not be applied stays in the history only); a
    # chat model is told how to answer in `fmt` and why its previous answer could not be applied.
    prompt = refine_input(task, code, focus, config, edit_instruction=instructions(fmt),
                          apply_error=previous_feedback(state) or None)
    [result] = deps.model.complete([chat_prompts.request(prompt, sampling(config, code))])
    texts = [{"text": c.text, "finish_reason": c.finish_reason} for c in result.completions]
    return {"completions": texts, "tokens_used": result.usage.prompt_tokens + result.usage.completion_tokens,
            "history": [{"node": "reason", "samples": len(texts), "edit_format": fmt,
                         "finish": [c.finish_reason for c in result.completions]}]}

