"""Forward/backward instructions show code and values in CRUXEval's quote style (' -> "), as the eval prompt does."""

from __future__ import annotations

import re

from agent.prompts import cruxeval_input_prompt, cruxeval_output_prompt, render
from training.data.models import Example
from training.data.pyx_pipeline import monologue_instruction, prompt_piece
from training.data.verify import MonologueTask

CODE = "def f(text):\n    return text.replace('a', '-') + '!'\n"
EXAMPLE = Example(input="'banana'", output="'b-n-n-!'")


def test_a_piece_without_double_quotes_gets_cruxevals_quotes() -> None:
    assert prompt_piece("f('x', 'y')") == 'f("x", "y")'
    assert prompt_piece("'it\\'s'") == '"it\\"s"'


def test_a_piece_with_a_double_quote_stays_as_it_is() -> None:
    # Swapping would turn '"' into """ (a different program); such a piece keeps its own quotes.
    assert prompt_piece("'say \"hi\"'") == "'say \"hi\"'"
    assert prompt_piece("def f(s):\n    return s + '\"'") == "def f(s):\n    return s + '\"'"


def test_forward_instruction_is_the_cruxeval_output_prompt() -> None:
    instruction = monologue_instruction(MonologueTask(code=CODE, example=EXAMPLE, direction="forward"))
    assert "'" not in instruction
    assert render("forward", instruction) == cruxeval_output_prompt(CODE.rstrip("\n"), EXAMPLE.input)


def test_backward_instruction_is_the_cruxeval_input_prompt() -> None:
    instruction = monologue_instruction(MonologueTask(code=CODE, example=EXAMPLE, direction="backward"))
    assert 'assert f(??) == "b-n-n-!"' in instruction
    assert render("backward", instruction) == cruxeval_input_prompt(CODE.rstrip("\n"), EXAMPLE.output)


def test_pieces_are_judged_one_by_one() -> None:
    mixed = Example(input="'he said \"no\"'", output="13")
    instruction = monologue_instruction(MonologueTask(code=CODE, example=mixed, direction="forward"))
    code = re.sub(r" # \[L\d+\]$", "", instruction.split("[PYTHON]\n")[1].split("\nassert f(")[0], flags=re.M)
    assert code == CODE.rstrip("\n").replace("'", '"')
    assert "assert f('he said \"no\"') == ??" in instruction
