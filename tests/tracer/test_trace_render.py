"""The renderers on real traces (taken by the child directly) and SemCoder's value conventions."""

from __future__ import annotations

import json

import pytest

from sandbox._render_semcoder import json_value, output_value
from sandbox.trace_render import render

COUNT_A = "def f(text):\n    count = 0\n    for ch in text:\n        if ch == 'a':\n            count += 1\n    return count\n"

SEMCODER_COUNT_A = """\
def f(text): # [INPUT] {"text": "banana"} [/INPUT]
    count = 0 # [STATE-0] {"count": 0} [/STATE-0]
    for ch in text: # [STATE-1] {"ch": "b"} [/STATE-1][STATE-2] {"ch": "a"} [/STATE-2] ... [STATE-8] {"ch": "a"} [/STATE-8]
        if ch == 'a':
            count += 1 # [STATE-3] {"count": 1} [/STATE-3][STATE-6] {"count": 2} [/STATE-6][STATE-9] {"count": 3} [/STATE-9]
    return count # [OUTPUT] 3 [/OUTPUT]
"""


def test_semcoder_annotation_matches_the_released_format(child) -> None:
    assert render(child(COUNT_A, "f('banana')"), "semcoder") == SEMCODER_COUNT_A


def test_semcoder_annotation_marks_the_exception_line(child) -> None:
    code = "def f(xs):\n    head = xs[0]\n    return head / 0\n"
    text = render(child(code, "f([3])"), "semcoder")
    assert text.splitlines() == [
        'def f(xs): # [INPUT] {"xs": [3]} [/INPUT]',
        '    head = xs[0] # [STATE-0] {"head": 3} [/STATE-0]',
        "    return head / 0 # [EXCEPTION] ZeroDivisionError: division by zero [/EXCEPTION]",
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("[1, 2]", [1, 2]),
        ("['a', 'b']", ["a", "b"]),
        ("'abc'", "abc"),
        ("''", ""),
        ("None", None),
        ("True", True),
        ("(1, 2)", "(1, 2)"),
        ("{'a': 1}", "{'a': 1}"),
        ("3.5", 3.5),
    ],
)
def test_values_are_read_back_as_semcoders_builder_reads_pysnooper(text: str, value: object) -> None:
    assert json_value(text) == value


def test_output_values_quote_bare_strings_only() -> None:
    assert output_value("abc") == '"abc"'
    assert output_value("(1, 2)") == "(1, 2)"
    assert output_value([1, "a"]) == json.dumps([1, "a"])
    assert output_value(None) == "None"


def test_blocks_keep_the_first_and_last_n_with_states(child) -> None:
    text = render(child(COUNT_A, "f('banana')"), "blocks", keep_blocks=2)
    lines = text.splitlines()
    assert lines[0] == "[CALL] f('banana')"
    assert lines[1:7] == [
        "[BLOCK-0] f, lines 2-3",
        "# state before: {text: 'banana'}",
        "    count = 0",
        "    for ch in text:",
        "# state after: {text: 'banana', count: 0, ch: 'b'}",
        "[BLOCK-1] f, line 4",
    ]
    assert "[... 13 blocks omitted ...]" in lines
    assert [line for line in lines if line.startswith("[BLOCK-")][-1] == "[BLOCK-16] f, line 6"
    assert lines[-1] == "[RETURN] 3"


def test_monologue_explains_branches_loops_and_the_result(child) -> None:
    text = render(child(COUNT_A, "f('banana')"), "monologue", line_offset=4)
    assert text.startswith("### Execution Simulation\nLet's simulate `f('banana')` step by step.\n")
    assert "- [L6]: `count = 0` — `count` is set to `0`." in text
    assert "- [L8]: `if ch == 'a':` — checks `ch == 'a'`, which is false (with `ch = 'b'`), so its body is skipped." in text
    assert "- [L9]: `count += 1` — `count` changes from `2` to `3`." in text
    assert "- [L7]: `for ch in text:` — has no more items, so the loop ends." in text
    assert "similar steps of the repetition left out" in text
    assert text.endswith("### Conclusion\nThe call `f('banana')` returns `3`.")
    assert render(child(COUNT_A, "f('banana')"), "monologue", line_offset=4) == text  # deterministic


def test_monologue_tells_nested_calls_and_exceptions(child) -> None:
    code = "def g(x):\n    return 10 // x\n\ndef f(x):\n    y = g(x)\n    return y\n"
    text = render(child(code, "f(0)"), "monologue")
    assert "  - The function `g` is entered with `x = 0`." in text
    assert "  - [L2] (in `g`): `return 10 // x` — raises `ZeroDivisionError: integer division or modulo by zero`." in text
    assert text.endswith("raises `ZeroDivisionError: integer division or modulo by zero`.")


def test_json_rendering_is_the_cli_object(child) -> None:
    trace = child(COUNT_A, "f('ab')")
    assert json.loads(render(trace, "json")) == trace.cli_json()
    with pytest.raises(ValueError, match="unknown trace format"):
        render(trace, "xml")  # type: ignore[arg-type]
