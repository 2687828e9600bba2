"""What the model sees of a failure, per feedback mode, and the refine prompt built from it (SemCoder's raw prompt,
or the chat dialect's messages: agent/chat_prompts.py).

- semcoder: the paper's protocol: the problem, the buggy code and one failed test as
  `retv = <call>` / `assert retv == <expected>`; no trace, no history.
- trace: the same, with the buggy code annotated by the real trace of the failed test (SemCoder's
  concise inline `# [STATE-k] ... [/STATE-k]` comments), so the model reasons over real states.
- blocks: the same prompt plus LDB-style block states of the real execution after the failed test.
"""

from __future__ import annotations

from agent import chat_prompts, prompts
from agent.failing_test import FailedTest, call_for_module
from agent.nodes import Tracer
from agent.state import FeedbackMode, Focus, RunConfig
from agent.tasks import Task
from sandbox.trace_render import render_blocks, render_semcoder


def test_block(failed: FailedTest) -> str:
    """The Failed Test block: the paper's two lines, or the test's source where no call could be derived."""
    if failed.call is not None and failed.expected is not None:
        return prompts.failed_test(failed.call, failed.expected)
    return (failed.source or failed.test_id).rstrip("\n") + "\n"


def render_trace(tracer: Tracer, mode: FeedbackMode, code: str, module_file: str, failed: FailedTest) -> str:
    """The real execution of the failed call over `code` (traced by the run's own sandbox), rendered for `mode`;
    '' where there is none."""
    if mode == "semcoder" or failed.call is None:
        return ""
    trace = tracer.trace(code, call_for_module(failed.call, module_file))
    return render_semcoder(trace) if mode == "trace" else render_blocks(trace)


def refine_prompt(task: Task, code: str, focus: Focus, mode: FeedbackMode) -> str:
    problem = task.problem or _problem_from_test(focus)
    return build_refine_prompt(problem, code, focus.test_block, focus.trace, mode)


def refine_input(task: Task, code: str, focus: Focus, config: RunConfig, *,
                 edit_instruction: str = chat_prompts.WHOLE_FUNCTION_ANSWER,
                 apply_error: str | None = None) -> chat_prompts.Prompt:
    """The refine prompt in the run's dialect: SemCoder's raw prompt, or the chat messages with the same content
    (`edit_instruction` and `apply_error` apply to the chat dialect: SemCoder's answer format is its training's)."""
    if config.prompt_dialect == "semcoder":
        return refine_prompt(task, code, focus, config.feedback)
    return chat_prompts.refine_messages(
        task.problem or _problem_from_test(focus), code, focus.test_block, focus.trace, config.feedback,
        edit_instruction=edit_instruction, apply_error=apply_error, system=config.system_prompt,
        project_instructions=project_instructions(task))


def project_instructions(task: Task) -> str:
    """A project's AGENTS.md for the chat system message (capped); '' for function-level tasks."""
    return chat_prompts.agents_instructions(task.files)[0] if task.kind == "project" else ""


def build_refine_prompt(problem: str, code: str, failed_test_block: str, trace: str, mode: FeedbackMode) -> str:
    """SemCoder's refine prompt; `trace` (rendered for `mode`) replaces or follows the code where given."""
    if mode == "trace" and trace:
        return prompts.refine_prompt(problem, trace, failed_test_block)
    instruction = prompts.refine_instruction(problem, code, failed_test_block)
    if mode == "blocks" and trace:
        instruction += f"\n### Execution Blocks\n{trace.rstrip()}\n"
    return prompts.render("refine", instruction)


def _problem_from_test(focus: Focus) -> str:
    if focus.adds:
        return (f"The test `{focus.test_id}` uses `{focus.function}`, which `{focus.file}` does not define. "
                f"Add `{focus.function}` to `{focus.file}` (shown below: its imports, constants and signatures).")
    target = f"`{focus.function}`" if focus.function else "the code"
    return f"Fix {target} so that the test `{focus.test_id}` passes."
