"""generate: the model writes the code when the task has none (the NL-to-code template, or its chat messages)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent import chat_prompts
from agent.feedback import project_instructions
from agent.nodes import NodeDeps
from agent.parsing import ParseError, extract_code_block
from agent.persistence import load_task
from agent.prompts import nl2code_prompt
from agent.state import Candidate, RunConfig
from agent.tasks import Task


def generate(state: Mapping[str, Any], deps: NodeDeps) -> dict[str, Any]:
    task, config = load_task(state, deps.snapshots), RunConfig(**state["config"])
    if deps.model is None:
        return {"status": "error", "stop_reason": "the task has no code and no model was given to write it"}
    [result] = deps.model.complete([chat_prompts.request(nl2code_input(task, config), sampling(config))])
    file = task.editable[0]
    candidates = []
    for index, completion in enumerate(result.completions):
        code = extract_code_block(completion.text, finish_reason=completion.finish_reason)
        if not isinstance(code, ParseError):
            candidates.append(Candidate(files={file: code + "\n"}, origin=f"generated sample {index}"))
    update: dict[str, Any] = {"candidates": [c.model_dump() for c in candidates],
                              "tokens_used": result.usage.prompt_tokens + result.usage.completion_tokens}
    if not candidates:
        update |= {"status": "error", "stop_reason": "the model wrote no code that could be parsed"}
    return update


def nl2code_input(task: Task, config: RunConfig) -> chat_prompts.Prompt:
    if config.prompt_dialect == "semcoder":
        return nl2code_prompt(task.problem)
    return chat_prompts.nl2code_messages(task.problem, system=config.system_prompt,
                                         project_instructions=project_instructions(task))


def sampling(config: RunConfig, shown_code: str = "") -> Any:
    """The run's sampling; the answer's budget is at least what rewriting `shown_code` needs (about a token per
    3 characters, plus room for the monologue), so a long function's answer is not cut at --max-new-tokens."""
    from agent.models import SamplingParams

    needed = min(len(shown_code) // 3 + 512, MAX_AUTO_TOKENS)
    return SamplingParams(n=config.samples, temperature=config.temperature, top_p=config.top_p,
                          max_tokens=max(config.max_new_tokens, needed))


MAX_AUTO_TOKENS = 8192
