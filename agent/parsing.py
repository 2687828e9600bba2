"""Parsers for SemCoder's outputs: code blocks, [ANSWER] assertions, [Refined] code, monologue sections.

A model's output being truncated or malformed is data, not an exception: every parser returns either its
result or a `ParseError` saying what was wrong. Pass the completion's `finish_reason` where you have it:
a missing closing tag is fine when generation stopped at that tag (vLLM and OpenAI drop the stop string),
and is "unterminated" when generation ran out of tokens.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

ParseProblem = Literal["missing", "unterminated", "malformed"]
Direction = Literal["forward", "backward"]

FORWARD_SECTIONS = (
    "Understanding the Function",
    "Key Properties and Constraints",
    "Execution Simulation",
    "Conclusion",
)
BACKWARD_SECTIONS = (
    "Understanding the Function",
    "Key Properties and Constraints",
    "Reverse Deduction",
    "Conclusion",
)
REFINE_SECTIONS = ("Execution Simulation", "Root Cause Analysis")
_REQUIRED: dict[Direction, tuple[str, ...]] = {"forward": FORWARD_SECTIONS, "backward": BACKWARD_SECTIONS}
_HEADER = re.compile(r"^###[ \t]+(.+?)[ \t]*$", re.MULTILINE)
_FENCE_OPEN = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n?")


class ParseError(BaseModel):
    problem: ParseProblem
    detail: str


class Answer(BaseModel):
    """`assert <call> == <value>` from between [ANSWER] and [/ANSWER]."""

    assertion: str
    call: str
    value: str


class Monologue(BaseModel):
    sections: dict[str, str]
    answer: Answer


class RefineResponse(BaseModel):
    sections: dict[str, str]
    code: str


def _closed_by_stop(finish_reason: str | None) -> bool:
    return finish_reason == "stop"


def _unclosed(what: str, finish_reason: str | None) -> ParseError:
    if finish_reason == "length":
        return ParseError(
            problem="unterminated", detail=f"{what} not closed: the output was cut at max_tokens"
        )
    return ParseError(problem="missing", detail=f"{what} not closed")


def _between(
    text: str, opening: str, closing: str, finish_reason: str | None, *, last: bool
) -> str | ParseError:
    """The text after `opening` (its last or first occurrence) up to `closing`."""
    start = text.rfind(opening) if last else text.find(opening)
    if start < 0:
        return ParseError(problem="missing", detail=f"no {opening} in the output")
    body = text[start + len(opening) :]
    end = body.find(closing)
    if end >= 0:
        return body[:end]
    if _closed_by_stop(finish_reason):
        return body
    return _unclosed(opening, finish_reason)


def extract_code_block(
    text: str, *, finish_reason: str | None = None, opened: bool = False
) -> str | ParseError:
    """The first fenced code block (```python preferred). `opened`: the prompt already opened the fence."""
    if opened:
        body = text
    else:
        start = text.find("```python")
        start = start if start >= 0 else text.find("```")
        if start < 0:
            return ParseError(problem="missing", detail="no ``` code block in the output")
        fence = _FENCE_OPEN.match(text, start)
        body = text[fence.end() if fence else start + 3 :]
    end = body.find("```")
    if end >= 0:
        return body[:end].strip("\n")
    if _closed_by_stop(finish_reason):
        return body.strip("\n")
    return _unclosed("code block", finish_reason)


def parse_answer(text: str, *, finish_reason: str | None = None) -> Answer | ParseError:
    """The assertion after the last [ANSWER] (the monologue may mention the tag before it)."""
    body = _between(text, "[ANSWER]", "[/ANSWER]", finish_reason, last=True)
    if isinstance(body, ParseError):
        return body
    assertion = body.strip()
    left, equals, right = assertion.partition("==")
    if not assertion.startswith("assert") or not equals:
        return ParseError(
            problem="malformed", detail=f"expected 'assert <call> == <value>', got {assertion!r}"
        )
    return Answer(assertion=assertion, call=left.removeprefix("assert").strip(), value=right.strip())


def cruxeval_prediction(
    text: str, task: Literal["output", "input"], *, finish_reason: str | None = None
) -> str | ParseError:
    """CRUXEval's answer: the value (output task) or the call (input task), with " turned back into '."""
    answer = parse_answer(text, finish_reason=finish_reason)
    if isinstance(answer, ParseError):
        return answer
    prediction = answer.value if task == "output" else answer.call
    return prediction.replace('"', "'")


def parse_sections(text: str) -> dict[str, str]:
    """'### Title' headers and the text under each, in order."""
    headers = list(_HEADER.finditer(text))
    sections: dict[str, str] = {}
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        end = following.start() if following else len(text)
        sections[header.group(1)] = text[header.end() : end].strip()
    return sections


def _missing_sections(sections: dict[str, str], required: tuple[str, ...]) -> ParseError | None:
    missing = [name for name in required if name not in sections]
    if missing:
        return ParseError(problem="malformed", detail=f"missing sections: {', '.join(missing)}")
    return None


def parse_monologue(
    text: str, direction: Direction, *, finish_reason: str | None = None
) -> Monologue | ParseError:
    """A forward or backward monologue: its sections up to [/MONOLOGUE], then the [ANSWER]."""
    end = text.find("[/MONOLOGUE]")
    if end < 0:
        return _unclosed("[MONOLOGUE]", finish_reason)
    sections = parse_sections(text[:end].replace("[MONOLOGUE]", ""))
    problem = _missing_sections(sections, _REQUIRED[direction])
    if problem:
        return problem
    answer = parse_answer(text[end:], finish_reason=finish_reason)
    if isinstance(answer, ParseError):
        return answer
    return Monologue(sections=sections, answer=answer)


def parse_refined(text: str, *, finish_reason: str | None = None) -> str | ParseError:
    """The refined code: inside [Refined]...[/Refined] (fenced or not), else the first ```python block."""
    if "[Refined]" not in text:
        return extract_code_block(text, finish_reason=finish_reason)
    body = _between(text, "[Refined]", "[/Refined]", finish_reason, last=False)
    if isinstance(body, ParseError):
        return body
    if "```" in body:
        # The closing tag was found (or we stopped at it), so an unclosed fence is just a sloppy block.
        return extract_code_block(body, finish_reason="stop")
    return body.strip("\n")


def parse_refine_response(text: str, *, finish_reason: str | None = None) -> RefineResponse | ParseError:
    """A PyX-R style answer: rationale sections, then the [Refined] code."""
    code = parse_refined(text, finish_reason=finish_reason)
    if isinstance(code, ParseError):
        return code
    rationale = text.split("[Refined]", 1)[0].replace("[MONOLOGUE]", "").replace("[/MONOLOGUE]", "")
    sections = parse_sections(rationale)
    problem = _missing_sections(sections, REFINE_SECTIONS)
    if problem:
        return problem
    return RefineResponse(sections=sections, code=code)
