"""Before a repair starts: can the configured model serve it? A run that cannot work fails at once, saying why.

For an `openai:` model, agent/models/_endpoint.py's checks (the model name, the dialect's route, the context
window) with the longest prompt the run is known to send: the refine prompt over the largest unit the loop may show
(the whole file of a function-level task, the longest function of a project; the nl2code prompt where the task has
no code yet) with a minimal failed test, and the completion budget the loop gives that code. For a local checkpoint
(`transformers:` / `vllm:`) in the chat dialect, that its tokenizer has a chat template.
"""

from __future__ import annotations

import ast

from agent import chat_prompts
from agent.feedback import refine_input
from agent.localize import function_source
from agent.models import EndpointError, ModelConfig, OpenAIGenerator, check_endpoint, route_of
from agent.nodes.generate import nl2code_input, sampling
from agent.splice import qualified_defs
from agent.state import Focus, RunConfig
from agent.tasks import Task

_PROBE_TEST = "retv = f()\nassert retv == None\n"


def check_model(task: Task, config: RunConfig) -> str | None:
    """Raises ModelError (EndpointError, ContextWindowError; ModelError alone: the server cannot be reached) where the model cannot serve this run; else a line
    saying what was checked (None: nothing to check)."""
    if not config.uses_model:
        return None
    backend, _, name = config.model.partition(":")
    dialect = config.prompt_dialect
    if backend == "openai":
        settings = ModelConfig(backend="openai", model=name)
        generator = OpenAIGenerator(name, settings.model_url, api_key=settings.api_key.get_secret_value(),
                                    timeout_s=min(settings.timeout_s, 120.0), max_retries=settings.max_retries)
        prompt, max_new_tokens = longest_known_prompt(task, config)
        tokens_flag = "--max-new-tokens" if max_new_tokens == config.max_new_tokens else (
            f"--max-new-tokens (raised to {max_new_tokens} for this code: an answer gets room to rewrite what it is "
            "shown, a third of its characters plus 512)")
        report = check_endpoint(generator, dialect, chat_prompts.request(prompt, sampling(config)), max_new_tokens,
                                tokens_flag=tokens_flag)
        return (f"model {name!r} at {generator.base_url}: --dialect {dialect} ({route_of(dialect)}), "
                f"{report.describe()}")
    if dialect == "chat" and backend in ("transformers", "vllm"):
        _require_chat_template(name)
        return f"model {name}: --dialect chat, its tokenizer has a chat template"
    return None


def longest_known_prompt(task: Task, config: RunConfig) -> tuple[chat_prompts.Prompt, int]:
    """(the prompt, its completion budget) over the largest unit of code the loop may show."""
    first = task.editable[0]
    if task.kind == "function" and not task.files.get(first, "").strip():
        return nl2code_input(task, config), sampling(config).max_tokens
    if task.kind == "function":
        path, function, code = first, task.entry_point, task.files[first]
    else:
        path, function, code = _longest_function(task)
    focus = Focus(test_id="probe", file=path, function=function, whole_file=task.kind == "function",
                  test_block=_PROBE_TEST, trace=code if config.feedback != "semcoder" else "")  # a trace's size
    return refine_input(task, code, focus, config), sampling(config, code).max_tokens


def _longest_function(task: Task) -> tuple[str, str | None, str]:
    """(file, function, what the model is shown of it) for the editable function that spans most lines."""
    best: tuple[int, str, str | None] = (-1, task.editable[0], None)
    for path in task.editable:
        try:
            tree = ast.parse(task.files[path])
        except SyntaxError:
            continue
        for qualified, node in qualified_defs(tree).items():
            span = (node.end_lineno or node.lineno) - node.lineno
            if span > best[0]:
                best = (span, path, qualified)
    _, path, function = best
    source = task.files[path]
    return path, function, function_source(source, function) if function else source


def _require_chat_template(checkpoint: str) -> None:
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    except Exception:  # not loadable here (a hub id offline): the backend says why when it loads
        return
    if not getattr(tokenizer, "chat_template", None):
        raise EndpointError(f"the tokenizer of {checkpoint} has no chat template, which --dialect chat needs: pass "
                         "--dialect semcoder (raw prompts), or use a checkpoint with a chat template")
