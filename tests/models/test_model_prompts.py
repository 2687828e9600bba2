"""The exact bytes of every SemCoder prompt, written out literally (from ../shared/semcoder-formats.md and the
release's src/prompts.py and experiments/cruxeval_prompts.py): a changed character here breaks the checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from transformers import AutoTokenizer

from agent import prompts
from agent.prompts import (
    PyXRecord,
    PyXRRecord,
    TrainingExample,
    backward_monologue_prompt,
    cruxeval_input_prompt,
    cruxeval_output_prompt,
    failed_test,
    forward_monologue_prompt,
    label_lines,
    nl2code_prompt,
    refine_prompt,
    render_pyx,
    render_pyxr,
    tokenize_example,
)

CODE = "def f(nums):\n    s = 0\n\n    for n in nums:\n        s += n\n    return s"

FORWARD_HEADER = (
    "Simulate the Execution: You are given a Python function and an assertion containing a function input. "
    "Complete the assertion containing the execution output corresponding to the given input in [ANSWER] and "
    "[/ANSWER] tags.\n"
)
BACKWARD_HEADER = (
    "Deduce the Semantic Constraints: You are given a Python program and its expected output. Find one input such "
    "that executing the program with the input leads to the given output. Complete the assertion with one such "
    "input in between [ANSWER] and [/ANSWER].\n"
)


def test_nl2code_prompt() -> None:
    expected = (
        "You are an exceptionally intelligent coding assistant that consistently delivers accurate and reliable "
        "<Code> according to <NL_Description>\n"
        "\n"
        "<NL_Description>\n"
        "Write a function that adds two numbers.\n"
        "\n"
        "<Code>\n"
    )
    assert nl2code_prompt("Write a function that adds two numbers.") == expected
    assert nl2code_prompt("Add.", "```python\ndef add(").endswith("<Code>\n```python\ndef add(")


def test_line_labels_skip_blank_lines_and_start_at_five() -> None:
    assert label_lines("a = 1\n\n  \nb = 2") == "a = 1 # [L5]\n\n  \nb = 2 # [L8]"


def test_forward_monologue_prompt() -> None:
    expected = FORWARD_HEADER + (
        "[PYTHON]\n"
        "def f(nums): # [L5]\n"
        "    s = 0 # [L6]\n"
        "\n"
        "    for n in nums: # [L8]\n"
        "        s += n # [L9]\n"
        "    return s # [L10]\n"
        "assert f([1, 2, 3]) == ??\n"
        "[/PYTHON]\n"
        "[MONOLOGUE]\n"
    )
    assert forward_monologue_prompt(CODE, "[1, 2, 3]") == expected


def test_backward_monologue_prompt_keeps_the_missing_bracket() -> None:
    expected = BACKWARD_HEADER + (
        "PYTHON]\n"
        "def f(nums):\n"
        "    s = 0\n"
        "\n"
        "    for n in nums:\n"
        "        s += n\n"
        "    return s\n"
        "assert f(??) == 6\n"
        "[/PYTHON]\n"
        "\n"
        "[MONOLOGUE]\n"
    )
    assert backward_monologue_prompt(CODE, "6") == expected


def test_cruxeval_prompts_turn_single_quotes_into_double_quotes() -> None:
    code = "def f(s):\n    return s + 'a'"
    assert cruxeval_output_prompt(code, "'x'") == FORWARD_HEADER + (
        '[PYTHON]\ndef f(s): # [L5]\n    return s + "a" # [L6]\nassert f("x") == ??\n[/PYTHON]\n[MONOLOGUE]\n'
    )
    assert cruxeval_input_prompt(code, "'xa'") == BACKWARD_HEADER + (
        'PYTHON]\ndef f(s):\n    return s + "a"\nassert f(??) == "xa"\n[/PYTHON]\n\n[MONOLOGUE]\n'
    )


def test_refine_prompt_keeps_the_typo_the_trailing_space_and_the_blank_line() -> None:
    expected = (
        "Debug and Refine the Code: You are given a a problem to be implemented in Python, and a buggy code that "
        "tries to solve the problem but fails the test case.\n"
        "You should firstly simulate the execution with the buggy code and the failed test to identify the root "
        "cause of the failure. \n"
        "Then, you should fix the bug and wrap the refined code in between [Refined] and [/Refined].\n"
        "### Problem\n"
        "Return the sum of a list.\n"
        "\n"
        "### Buggy Solution\n"
        "```python\n"
        "def total(xs):\n"
        "    return sum(xs) + 1\n"
        "```\n"
        "\n"
        "### Failed Test\n"
        "```python\n"
        "retv = total([1, 2])\n"
        "assert retv == 3\n"
        "\n"
        "```\n"
        "\n"
    )
    test = failed_test("total([1, 2])", "3")
    assert (
        refine_prompt("Return the sum of a list.", "def total(xs):\n    return sum(xs) + 1", test) == expected
    )


def test_pyx_records_render_with_their_task_template() -> None:
    nl = render_pyx(PyXRecord(nl="Add two numbers.", response="def add(a, b):\n    return a + b"))
    assert nl.prompt == nl2code_prompt("Add two numbers.")
    assert nl.completion == "def add(a, b):\n    return a + b"
    forward = render_pyx(PyXRecord(fwd_mnl="[PYTHON]\nx\n[/PYTHON]", response="r"))
    assert forward.prompt == FORWARD_HEADER + "[PYTHON]\nx\n[/PYTHON]\n"
    backward = render_pyx(PyXRecord(bwd_mnl="PYTHON]\nx\n[/PYTHON]", response="r"))
    assert backward.prompt == BACKWARD_HEADER + "PYTHON]\nx\n[/PYTHON]\n"
    refine = render_pyxr(PyXRRecord(fault="### Problem\np\n", response="r"))
    assert refine.prompt.endswith("[/Refined].\n### Problem\np\n\n")


@pytest.mark.parametrize("fields", [{}, {"nl": "a", "fwd_mnl": "b"}])
def test_pyx_record_needs_exactly_one_task(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one of nl, fwd_mnl, bwd_mnl"):
        PyXRecord(response="r", **fields)


def test_tokenize_example_adds_bos_and_eos_and_masks_the_prompt(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    example = TrainingExample(prompt="def f(x):\n", completion="    return x\n")
    prompt_ids = tokenizer.encode(example.prompt, add_special_tokens=False)
    completion_ids = tokenizer.encode(example.completion, add_special_tokens=False)
    tokenized = tokenize_example(tokenizer, example, max_length=1216)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    assert tokenized.input_ids == [bos, *prompt_ids, *completion_ids, eos]
    assert tokenized.labels == [-100] * (1 + len(prompt_ids)) + [*completion_ids, eos]
    assert not tokenized.truncated
    short = tokenize_example(tokenizer, example, max_length=3)
    assert (
        short.input_ids == tokenized.input_ids[:3] and short.labels == [-100, -100, -100] and short.truncated
    )


def test_monologues_stop_at_the_answer_tag() -> None:
    assert prompts.stop_strings("forward") == ("[/ANSWER]",)
    assert prompts.stop_strings("nl2code") == ()
