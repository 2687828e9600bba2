"""The chat dialect's prompts: system + user messages for any instruct model, one per task SemCoder's raw prompts
(agent/prompts.py, unchanged) cover, carrying the same information.

- NL to code (the repair loop's `generate`, HumanEval+/MBPP+ generation): the description, the answer in a
  ```python block.
- Refine (the loop's `reason`, the evals' refine rounds): the problem, the code under repair, the failed test, and
  per feedback mode what SemCoder's raw prompt adds: nothing (`semcoder`), the code annotated with the real trace of
  the failed test (`trace`: sandbox/trace_render.py's SemCoder rendering, shown after the clean code), the LDB-style
  block states (`blocks`). The answer's format is a parameter (`edit_instruction`; the edit formats supply theirs),
  as is a note on why the previous answer could not be applied (`apply_error`).
- CRUXEval-O and -I: the function and the assertion to complete, the answer between [ANSWER] and [/ANSWER] as
  agent/parsing.py reads it. Quotes are normalised as in SemCoder's prompts (' becomes "), so the parser's
  reverse mapping holds for both dialects.

The system message can be replaced (`system`: `--system-prompt-file`) and a project's AGENTS.md is appended to it
(`project_instructions`, capped at MAX_AGENTS_CHARS with a note where cut).
"""

from __future__ import annotations

from collections.abc import Sequence

from agent import prompts
from agent.models import ChatMessage, GenerationRequest, SamplingParams

Messages = tuple[ChatMessage, ...]
Prompt = str | Messages  # what a request carries: a raw prompt (semcoder dialect) or a chat

NL2CODE_SYSTEM = (
    "You are an exceptionally intelligent coding assistant that consistently delivers accurate and reliable code "
    "according to the user's description."
)
REFINE_SYSTEM = (
    "You are an expert Python developer who debugs by reasoning about execution. You are given a problem, code that "
    "tries to solve it and a test that the code fails. First simulate the execution of the code on the failed test, "
    "step by step, to find the root cause of the failure; then fix the code. Change only what the fix needs."
)
EXECUTION_SYSTEM = (
    "You are an expert Python programmer who predicts what code does by simulating its execution step by step, "
    "tracking the value of every variable."
)
CODE_BLOCK_ANSWER = "Write the complete solution in Python, in one ```python code block."
WHOLE_FUNCTION_ANSWER = (
    "Answer with a short analysis of the root cause, then the fixed code: the complete new version of each function "
    "you change (of the whole code, if a whole file is shown), in one ```python code block, the only code block of "
    "your answer."
)
TRACE_EXPLAINED = (
    "The code as it ran on the failed test. The comments are the tracer's, not part of the code: "
    "`# [INPUT] ... [/INPUT]` holds the call's arguments, `[STATE-k] ... [/STATE-k]` the variables the line changed "
    "(k counts the changes in the order they happened) and `[OUTPUT] ... [/OUTPUT]` the value returned."
)
BLOCKS_EXPLAINED = (
    "The real execution of the failed test, block by block: each `[BLOCK-k]` is a run of lines executed together, "
    "with the variables before and after it; `[CALL]` is the call and the last line how it ended."
)
ANSWER_FORMAT = "[ANSWER]\nassert f(...) == ...\n[/ANSWER]"
MAX_AGENTS_CHARS = 8000
AGENTS_FILE = "AGENTS.md"


def chat(system: str, user: str) -> Messages:
    return (ChatMessage(role="system", content=system), ChatMessage(role="user", content=user))


def request(prompt: Prompt, params: SamplingParams) -> GenerationRequest:
    """A request for either dialect's prompt."""
    if isinstance(prompt, str):
        return GenerationRequest(prompt=prompt, params=params)
    return GenerationRequest(messages=tuple(prompt), params=params)


def system_text(default: str, system: str | None = None, project_instructions: str = "") -> str:
    """The system message: `system` in place of the default where given, then the project's instructions."""
    text = (default if system is None else system).rstrip()
    if project_instructions.strip():
        text += f"\n\n## Project instructions ({AGENTS_FILE})\n\n{project_instructions.strip()}"
    return text


def agents_instructions(files: dict[str, str], limit: int = MAX_AGENTS_CHARS) -> tuple[str, str | None]:
    """The project root's AGENTS.md for the system message, cut at `limit` characters (at a line end where one is
    near), and a note for the user where it was cut; ('', None) where there is none."""
    text = files.get(AGENTS_FILE, "")
    if len(text) <= limit:
        return text, None
    cut = text.rfind("\n", 0, limit)
    shown = text[: cut if cut > limit // 2 else limit]
    marker = f"\n[{AGENTS_FILE} cut here: the first {len(shown)} of its {len(text)} characters are shown]"
    return shown + marker, (f"{AGENTS_FILE} has {len(text)} characters: the system message carries its first "
                            f"{len(shown)} (cap {limit})")


# --- NL to code --------------------------------------------------------------------------------------------------


def nl2code_messages(problem: str, *, instruction: str = CODE_BLOCK_ANSWER, system: str | None = None,
                     project_instructions: str = "") -> Messages:
    user = f"{problem.strip()}\n\n{instruction}" if instruction else problem.strip()
    return chat(system_text(NL2CODE_SYSTEM, system, project_instructions), user)


# --- refine -------------------------------------------------------------------------------------------------------


def refine_messages(problem: str, code: str, failed_test_block: str, trace: str = "", mode: str = "semcoder", *,
                    edit_instruction: str = WHOLE_FUNCTION_ANSWER, apply_error: str | None = None,
                    system: str | None = None, project_instructions: str = "") -> Messages:
    """The refine prompt as a chat. `trace` is the failed test's execution rendered for `mode` (feedback.render_trace),
    '' for the semcoder mode or where there is none; `apply_error` says why the previous answer could not be applied."""
    sections = [
        f"### Problem\n{problem.strip()}",
        f"### Code\n```python\n{code.rstrip()}\n```",
        f"### Failed Test\n```python\n{failed_test_block.rstrip()}\n```",
    ]
    if trace and mode == "trace":
        sections.append(f"### Execution Trace\n{TRACE_EXPLAINED}\n```python\n{trace.rstrip()}\n```")
    elif trace and mode == "blocks":
        sections.append(f"### Execution Blocks\n{BLOCKS_EXPLAINED}\n```\n{trace.rstrip()}\n```")
    if apply_error:
        sections.append(f"### Your Previous Answer\nYour previous answer could not be applied: {apply_error.strip()}")
    if edit_instruction:
        sections.append(edit_instruction.strip())
    return chat(system_text(REFINE_SYSTEM, system, project_instructions), "\n\n".join(sections))


# --- CRUXEval -------------------------------------------------------------------------------------------------------


def cruxeval_output_messages(code: str, call_input: str, *, system: str | None = None) -> Messages:
    """Output prediction (CRUXEval-O): what does `f(call_input)` return?"""
    code, call_input = prompts.normalise_quotes(code), prompts.normalise_quotes(call_input)
    user = (
        "You are given a Python function and an assertion containing an input to the function. Complete the "
        "assertion with a literal (no unsimplified expressions, no function calls) containing the output when "
        "executing the provided code on the given input, even if the function is incorrect or incomplete. Execute "
        "the program step by step before arriving at an answer, then give the full assertion in [ANSWER] and "
        f"[/ANSWER] tags, like this:\n{ANSWER_FORMAT}\n\n"
        f"```python\n{code.rstrip()}\nassert f({call_input}) == ??\n```"
    )
    return chat(system_text(EXECUTION_SYSTEM, system), user)


def cruxeval_input_messages(code: str, output: str, *, system: str | None = None) -> Messages:
    """Input prediction (CRUXEval-I): an input for which `f` returns `output`."""
    code, output = prompts.normalise_quotes(code), prompts.normalise_quotes(output)
    user = (
        "You are given a Python function and an output. Find any input such that executing the function on the "
        "input leads to the given output. There may be several answers; give only one. Think step by step, then give "
        "the full assertion with the input you found in [ANSWER] and [/ANSWER] tags, like this:\n"
        f"{ANSWER_FORMAT}\n\n"
        f"```python\n{code.rstrip()}\nassert f(??) == {output}\n```"
    )
    return chat(system_text(EXECUTION_SYSTEM, system), user)


# --- helpers for callers -------------------------------------------------------------------------------------------

def rendered(messages: Sequence[ChatMessage]) -> str:
    """The messages as plain text (logs and tests; a model sees its own template's rendering, never this)."""
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages)
