"""SemCoder's prompt templates, byte for byte as the released checkpoints were trained on them.

Source: github ARiSE-Lab/SemCoder (main at edc4ad3): `src/prompts.py` (task templates), `src/dataset.py`
(training records and tokenization), `experiments/cruxeval_prompts.py` and `cruxeval_utils.py` (monologue
prompts, quote normalisation), `experiments/run_refine_evalplus.py` and `build_self_refine_input_v1p5.py`
(refine instruction). There is no chat template: each prompt is one of four task templates with
`{instruction}` filled in and an empty `{response}`.

Compatibility requirements (the checkpoints answer well only with these; do not "fix" them):
- Every template ends with "\\n{response}", so a prompt ends with a newline after the instruction.
- Forward monologue: non-blank code lines get " # [L{i+4}]" (i is the 1-based line number; the +4 offset
  is the format) and the monologue cites these labels; the prompt ends with "[MONOLOGUE]\\n".
- Backward monologue: the opening tag is "PYTHON]" (no "["), and a blank line precedes "[MONOLOGUE]".
- Refine: "a a problem" (doubled article) and the trailing space after "root cause of the failure.".
  The failed test ends with a newline inside its block, so a blank line precedes the closing fence.
- CRUXEval: every single quote in code, input and output becomes a double quote before prompting.
- Training: BOS + prompt tokens, then completion tokens + EOS; loss only on the completion.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, model_validator

TaskKind = Literal["nl2code", "forward", "backward", "refine"]

NL2CODE_TEMPLATE = (
    "You are an exceptionally intelligent coding assistant that consistently delivers accurate and reliable "
    "<Code> according to <NL_Description>\n\n<NL_Description>\n{instruction}\n\n<Code>\n{response}"
)
FORWARD_TEMPLATE = (
    "Simulate the Execution: You are given a Python function and an assertion containing a function input. "
    "Complete the assertion containing the execution output corresponding to the given input in [ANSWER] and "
    "[/ANSWER] tags.\n{instruction}\n{response}"
)
BACKWARD_TEMPLATE = (
    "Deduce the Semantic Constraints: You are given a Python program and its expected output. Find one input "
    "such that executing the program with the input leads to the given output. Complete the assertion with one "
    "such input in between [ANSWER] and [/ANSWER].\n{instruction}\n{response}"
)
REFINE_TEMPLATE = (
    "Debug and Refine the Code: You are given a a problem to be implemented in Python, and a buggy code that "
    "tries to solve the problem but fails the test case.\n"
    "You should firstly simulate the execution with the buggy code and the failed test to identify the root "
    "cause of the failure. \n"
    "Then, you should fix the bug and wrap the refined code in between [Refined] and [/Refined].\n"
    "{instruction}\n{response}"
)
TEMPLATES: dict[TaskKind, str] = {
    "nl2code": NL2CODE_TEMPLATE,
    "forward": FORWARD_TEMPLATE,
    "backward": BACKWARD_TEMPLATE,
    "refine": REFINE_TEMPLATE,
}

MONOLOGUE_STOP = "[/ANSWER]"  # generation stops here for forward and backward monologues
LINE_LABEL_OFFSET = 4


def render(kind: TaskKind, instruction: str, response: str = "") -> str:
    """A task template filled in; with an empty response this is exactly the training prompt."""
    return TEMPLATES[kind].format(instruction=instruction, response=response)


# --- NL to code -------------------------------------------------------------------------------------------


def nl2code_prompt(instruction: str, response_prefix: str = "") -> str:
    """`response_prefix` starts the answer, e.g. "```python\\n<signature>" as the EvalPlus runs did."""
    return render("nl2code", instruction, response_prefix)


# --- execution reasoning (monologues) ------------------------------------------------------------------------


def label_lines(code: str) -> str:
    """Append " # [L{i+4}]" to every non-blank line (i = 1-based line number), as the release does."""
    lines = code.split("\n")
    return "\n".join(
        f"{line} # [L{i + LINE_LABEL_OFFSET}]" if line.strip() else line for i, line in enumerate(lines, 1)
    )


def forward_monologue_instruction(code: str, call_input: str) -> str:
    return f"[PYTHON]\n{label_lines(code)}\nassert f({call_input}) == ??\n[/PYTHON]\n[MONOLOGUE]"


def backward_monologue_instruction(code: str, output: str) -> str:
    # "PYTHON]" without its "[" is what the released prompt has; keep it.
    return f"PYTHON]\n{code}\nassert f(??) == {output}\n[/PYTHON]\n\n[MONOLOGUE]"


def forward_monologue_prompt(code: str, call_input: str) -> str:
    """Output prediction: predict `f(call_input)` by simulating the execution line by line."""
    return render("forward", forward_monologue_instruction(code, call_input))


def backward_monologue_prompt(code: str, output: str) -> str:
    """Input prediction: find an input for which `f` returns `output`."""
    return render("backward", backward_monologue_instruction(code, output))


def normalise_quotes(text: str) -> str:
    """CRUXEval prompts had every ' replaced by " (the forward-monologue fine-tuning requires it)."""
    return text.replace("'", '"')


def cruxeval_output_prompt(code: str, call_input: str) -> str:
    return forward_monologue_prompt(normalise_quotes(code), normalise_quotes(call_input))


def cruxeval_input_prompt(code: str, output: str) -> str:
    return backward_monologue_prompt(normalise_quotes(code), normalise_quotes(output))


# --- refinement -------------------------------------------------------------------------------------------


def failed_test(call: str, expected: str) -> str:
    """The failed test as the release extracts it: two lines, each ending with a newline."""
    return f"retv = {call}\nassert retv == {expected}\n"


def refine_instruction(problem: str, buggy_code: str, test: str) -> str:
    """`test` is usually `failed_test(call, expected)`; its trailing newline is part of the format."""
    return (
        f"### Problem\n{problem}\n\n### Buggy Solution\n```python\n{buggy_code}\n```\n\n"
        f"### Failed Test\n```python\n{test}\n```\n"
    )


def refine_prompt(problem: str, buggy_code: str, test: str) -> str:
    return render("refine", refine_instruction(problem, buggy_code, test))


# --- training records ----------------------------------------------------------------------------------------


class PyXRecord(BaseModel):
    """A row of semcoder/PyX: exactly one of nl, fwd_mnl, bwd_mnl is non-empty."""

    nl: str = ""
    fwd_mnl: str = ""
    bwd_mnl: str = ""
    response: str

    @model_validator(mode="after")
    def _exactly_one_task(self) -> PyXRecord:
        filled = [name for name in ("nl", "fwd_mnl", "bwd_mnl") if getattr(self, name)]
        if len(filled) != 1:
            raise ValueError(
                f"a PyX record needs exactly one of nl, fwd_mnl, bwd_mnl; it has {filled or 'none'}"
            )
        return self

    @property
    def kind(self) -> TaskKind:
        if self.nl:
            return "nl2code"
        return "forward" if self.fwd_mnl else "backward"

    @property
    def instruction(self) -> str:
        return self.nl or self.fwd_mnl or self.bwd_mnl


class PyXRRecord(BaseModel):
    """A row of semcoder/PyX-R: a fault report (refine instruction) and the rationale plus fix."""

    fault: str
    response: str


class TrainingExample(BaseModel):
    prompt: str
    completion: str


def render_pyx(record: PyXRecord) -> TrainingExample:
    return TrainingExample(prompt=render(record.kind, record.instruction), completion=record.response)


def render_pyxr(record: PyXRRecord) -> TrainingExample:
    return TrainingExample(prompt=render("refine", record.fault), completion=record.response)


class Tokenizer(Protocol):
    """The part of a Hugging Face tokenizer that training needs."""

    bos_token_id: int | None
    eos_token_id: int | None

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


class TokenizedExample(BaseModel):
    input_ids: list[int]
    labels: list[int]
    truncated: bool


IGNORE_INDEX = -100


def tokenize_example(tokenizer: Tokenizer, example: TrainingExample, max_length: int) -> TokenizedExample:
    """BOS + prompt (labels ignored), then completion + EOS; cut at `max_length` (1216, or 2048 for PyX-R)."""
    if tokenizer.bos_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer needs both a BOS and an EOS token")
    prompt_ids = [tokenizer.bos_token_id, *tokenizer.encode(example.prompt, add_special_tokens=False)]
    completion_ids = [*tokenizer.encode(example.completion, add_special_tokens=False), tokenizer.eos_token_id]
    input_ids = prompt_ids + completion_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + completion_ids
    return TokenizedExample(
        input_ids=input_ids[:max_length], labels=labels[:max_length], truncated=len(input_ids) > max_length
    )


def stop_strings(kind: TaskKind) -> Sequence[str]:
    """Where generation should stop for a task (monologues end their answer with [/ANSWER])."""
    return (MONOLOGUE_STOP,) if kind in ("forward", "backward") else ()
