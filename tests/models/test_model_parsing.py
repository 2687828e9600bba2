from __future__ import annotations

from agent.parsing import (
    Answer,
    Monologue,
    ParseError,
    RefineResponse,
    cruxeval_prediction,
    extract_code_block,
    parse_answer,
    parse_monologue,
    parse_refine_response,
    parse_refined,
    parse_sections,
)

FORWARD_RESPONSE = """### Understanding the Function
The function sums a list; the answer goes in [ANSWER] tags.
### Key Properties and Constraints
- `s` starts at 0.
### Execution Simulation
- [L5]: called with [1, 2].
- [L6]: `s = 0`.
### Conclusion
The function returns 3.
[/MONOLOGUE]
[ANSWER]
assert f([1, 2]) == 3
[/ANSWER]"""


def test_code_block_prefers_python_fence_and_strips_it() -> None:
    text = "Here:\n```python\ndef f():\n    return 1\n```\nmore ```text```"
    assert extract_code_block(text) == "def f():\n    return 1"
    assert extract_code_block("```\nx = 1\n```") == "x = 1"


def test_code_block_opened_by_the_prompt() -> None:
    assert extract_code_block("    return a + b\n```\n", opened=True) == "    return a + b"


def test_code_block_errors_are_data() -> None:
    missing = extract_code_block("no code here")
    assert isinstance(missing, ParseError) and missing.problem == "missing"
    truncated = extract_code_block("```python\ndef f(", finish_reason="length")
    assert isinstance(truncated, ParseError) and truncated.problem == "unterminated"
    assert "max_tokens" in truncated.detail
    # Stopped at the closing fence (a stop string), so the block is complete.
    assert extract_code_block("```python\nx = 1\n", finish_reason="stop") == "x = 1"


def test_answer_takes_the_last_answer_tag() -> None:
    answer = parse_answer(FORWARD_RESPONSE)
    assert answer == Answer(assertion="assert f([1, 2]) == 3", call="f([1, 2])", value="3")


def test_answer_closed_by_the_stop_string_or_cut_off() -> None:
    stopped = "[ANSWER]\nassert f(1) == 'a == b'\n"
    assert parse_answer(stopped, finish_reason="stop") == Answer(
        assertion="assert f(1) == 'a == b'", call="f(1)", value="'a == b'"
    )
    cut = parse_answer("[ANSWER]\nassert f(1) ==", finish_reason="length")
    assert isinstance(cut, ParseError) and cut.problem == "unterminated"


def test_malformed_answers() -> None:
    assert parse_answer("[ANSWER]\nf(1) is 2\n[/ANSWER]") == ParseError(
        problem="malformed", detail="expected 'assert <call> == <value>', got 'f(1) is 2'"
    )
    missing = parse_answer("I think it is 3.")
    assert isinstance(missing, ParseError) and missing.problem == "missing"


def test_cruxeval_prediction_turns_double_quotes_back() -> None:
    text = 'reasoning\n[ANSWER]\nassert f("ab") == "ba"\n'
    assert cruxeval_prediction(text, "output", finish_reason="stop") == "'ba'"
    assert cruxeval_prediction(text, "input", finish_reason="stop") == "f('ab')"


def test_forward_monologue_sections_and_answer() -> None:
    monologue = parse_monologue("[MONOLOGUE]\n" + FORWARD_RESPONSE, "forward")
    assert isinstance(monologue, Monologue)
    assert list(monologue.sections) == [
        "Understanding the Function",
        "Key Properties and Constraints",
        "Execution Simulation",
        "Conclusion",
    ]
    assert monologue.sections["Execution Simulation"] == "- [L5]: called with [1, 2].\n- [L6]: `s = 0`."
    assert monologue.answer.value == "3"


def test_backward_monologue_needs_reverse_deduction() -> None:
    wrong = parse_monologue(FORWARD_RESPONSE, "backward")
    assert wrong == ParseError(problem="malformed", detail="missing sections: Reverse Deduction")
    backward = FORWARD_RESPONSE.replace("### Execution Simulation", "### Reverse Deduction")
    assert isinstance(parse_monologue(backward, "backward"), Monologue)


def test_truncated_monologue() -> None:
    cut = parse_monologue(FORWARD_RESPONSE[:120], "forward", finish_reason="length")
    assert isinstance(cut, ParseError) and cut.problem == "unterminated"


def test_refined_code_from_tags_or_first_python_block() -> None:
    tagged = "### Root Cause Analysis\nx\n[Refined]\n```python\ndef f():\n    return 2\n```\n[/Refined]"
    assert parse_refined(tagged) == "def f():\n    return 2"
    assert parse_refined("[Refined]\ndef f(): pass\n[/Refined]") == "def f(): pass"
    assert parse_refined("fix:\n```python\ny = 1\n```") == "y = 1"
    cut = parse_refined("[Refined]\n```python\ndef f(", finish_reason="length")
    assert isinstance(cut, ParseError) and cut.problem == "unterminated"


def test_refine_response() -> None:
    text = (
        "[MONOLOGUE]\n### Execution Simulation\nruns\n### Root Cause Analysis\noff by one\n"
        "### Bug Fixing\ndrop the +1\n[Refined]\n```python\ndef total(xs):\n    return sum(xs)\n```\n[/Refined]"
    )
    response = parse_refine_response(text)
    assert isinstance(response, RefineResponse)
    assert response.code == "def total(xs):\n    return sum(xs)"
    assert response.sections["Root Cause Analysis"] == "off by one"
    no_analysis = parse_refine_response("### Execution Simulation\nx\n[Refined]\ny\n[/Refined]")
    assert no_analysis == ParseError(problem="malformed", detail="missing sections: Root Cause Analysis")


def test_sections_keep_order_and_text() -> None:
    assert parse_sections("intro\n### A\none\n###  B \ntwo\nlines\n") == {"A": "one", "B": "two\nlines"}
