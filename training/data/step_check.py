"""Step verification of monologues: every checkable claim is compared with the real trace of the same call.

A teacher's final answer can be right while its steps are wrong (and a model trained on them learns the
wrong steps), so a monologue is kept only when every step the checker can read agrees with the trace.
Claims are read only from the sections that narrate the execution (`### Execution Simulation`,
`### Reverse Deduction`, `### Conclusion`): the first sections describe the code, where `returns `0``
may be a branch that never ran. What is read:

- a value at a line: a step citing `[Lk]` (k = source line + 4, as the prompts label lines) that says
  `` `x = 3` ``, `x = 3`, "`x` is set to / changes from .. to / becomes / is now / is initialized to /
  is updated to / must be `3`": x must hold that value before or after some execution of that line (a
  step may describe either side of the line, and a line in a loop runs several times);
- "returns `7`" / "returns 7" (or "the final output is `7`"): in a `[Lk]` step, some return at that line
  gave 7; elsewhere (the conclusion) the call returned 7;
- a loop count, "the loop runs/iterates N times" (or "N iterations"): some loop of the function ran its
  body exactly N times.
Only literal values (what `ast.literal_eval` reads) are checkable; a claim about a line that never ran is a
disagreement. The teacher-free monologues (monologue.py) pass the same checker, as tests show.
"""

from __future__ import annotations

import ast
import re
from typing import Literal

from pydantic import BaseModel, Field

from agent.prompts import LINE_LABEL_OFFSET
from sandbox._trace_steps import in_body, line_runs
from sandbox.tracer import Trace
from training.data.verify import same_value

ClaimKind = Literal["value", "return", "loop_count"]
_CHECKED_SECTIONS = ("execution simulation", "reverse deduction", "conclusion")
_LABEL = re.compile(r"\[L(\d+)\]")
_NAME = r"[A-Za-z_]\w*"
_CODE_ASSIGN = re.compile(rf"`({_NAME})\s*=(?!=)\s*([^`]+)`")
_PLAIN_ASSIGN = re.compile(rf"\[L\d+\]\**\s*:\s*({_NAME})\s*=(?!=)\s*(.+?)\s*$")
_PHRASED = re.compile(rf"`({_NAME})`\s+(?:is set to|is initialized to|is initialised to|becomes|is now|is updated to|"
                      rf"must be|changes from\s+`[^`]*`\s+to|=)\s+`([^`]+)`")
_RETURNS = re.compile(r"\b(?:returns|final output is)\s+(?:`([^`]+)`|([^\s`,;]+?))(?=[\s,;]|\.(?:\s|$)|$)")
_LOOP = re.compile(r"\b(?:loop\b[^.]*?\b(?:runs|iterates|executes)|iterates)\s+(\d+|once|twice|" +
                   "|".join(("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")) +
                   r")\s*(?:times?\b)?|\b(\d+)\s+iterations?\b")
_NUMBERS = {"once": 1, "one": 1, "twice": 2, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10}


class StepClaim(BaseModel):
    """One checkable statement of a monologue."""

    kind: ClaimKind
    labels: list[int] = Field(default_factory=list, description="The [Lk] labels (k) of the step's line, in order.")
    name: str | None = None
    value: str = Field(description="The claimed value (a literal) or loop count.")
    text: str = Field(description="The monologue line the claim was read from.")


class StepCheck(BaseModel):
    """What the checker found: how many steps it could check, how many agree, the first that does not."""

    checked: int = 0
    agreeing: int = 0
    first_disagreement: StepClaim | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.checked == self.agreeing


def claims_of(monologue: str) -> list[StepClaim]:
    """Every checkable claim of the narrating sections, in order."""
    claims: list[StepClaim] = []
    for line in _narration(monologue).splitlines():
        labels = [int(k) for k in _LABEL.findall(line)]
        seen: set[tuple[str, str]] = set()
        if labels:
            pairs = [*_CODE_ASSIGN.findall(line), *_PHRASED.findall(line)]
            plain = _PLAIN_ASSIGN.search(line.replace("`", ""))
            if plain:
                pairs.append((plain.group(1), plain.group(2).rstrip(".")))
            for name, value in pairs:
                value = value.strip()
                if (name, value) not in seen and _literal(value):
                    seen.add((name, value))
                    claims.append(StepClaim(kind="value", labels=labels, name=name, value=value, text=line))
        for ticked, bare in _RETURNS.findall(line):
            value = (ticked or bare).strip()
            if _literal(value):
                claims.append(StepClaim(kind="return", labels=labels, value=value, text=line))
        for word, digits in _LOOP.findall(line):
            count = _NUMBERS.get(word.lower()) if word and not word.isdigit() else int(word or digits)
            claims.append(StepClaim(kind="loop_count", labels=labels, value=str(count), text=line))
    return claims


def check_steps(monologue: str, trace: Trace, line_offset: int = LINE_LABEL_OFFSET) -> StepCheck:
    """Each claim of `monologue` against `trace` (the real run of the call the monologue is about)."""
    facts = _Facts(trace, line_offset)
    result = StepCheck()
    for claim in claims_of(monologue):
        result.checked += 1
        problem = facts.disagreement(claim)
        if problem is None:
            result.agreeing += 1
        elif result.first_disagreement is None:
            result.first_disagreement, result.reason = claim, problem
    return result


def _narration(monologue: str) -> str:
    """The text of the sections that narrate the run (everything before [/MONOLOGUE])."""
    body = monologue.split("[/MONOLOGUE]")[0]
    parts = re.split(r"^###\s+(.+?)\s*$", body, flags=re.M)
    return "\n".join(text for title, text in zip(parts[1::2], parts[2::2], strict=True)
                     if title.strip().lower() in _CHECKED_SECTIONS)


def _literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _equal(claimed: str, seen: str | None) -> bool:
    return seen is not None and (claimed == seen or same_value(claimed, seen))


class _Facts:
    """What the trace says, indexed by source line."""

    def __init__(self, trace: Trace, offset: int) -> None:
        self.trace = trace
        self.offset = offset
        self.runs = [r for r in line_runs(trace) if r.closed_at >= 0]
        self.calls = [e for e in trace.events if e.event == "call"]
        self.returns = [e for e in trace.events if e.event == "return"]
        try:
            self.loops = [n for n in ast.walk(ast.parse(trace.source)) if isinstance(n, ast.For | ast.While)]
        except SyntaxError:
            self.loops = []

    def disagreement(self, claim: StepClaim) -> str | None:
        """Why the claim is wrong (None: it agrees). A step citing several lines (the reverse deduction's
        "its value after [L6] ...; it starts as `0` at [L5]") agrees if it holds at any of them."""
        lines = [label - self.offset for label in claim.labels]
        if claim.kind == "value":
            return self._value(claim, lines)
        if claim.kind == "return":
            if not lines:
                return None if _equal(claim.value, self.trace.return_repr) else (
                    f"the call returned {self.trace.return_repr}, not {claim.value}")
            seen = [e.value for e in self.returns if e.line in lines]
            if not seen:
                return f"nothing returned at line(s) {lines}"
            return None if any(_equal(claim.value, v) for v in seen) else f"line(s) {lines} returned {seen}"
        counts = self._loop_counts()
        return None if int(claim.value) in counts else f"the loops ran {sorted(counts)} times"

    def _value(self, claim: StepClaim, lines: list[int]) -> str | None:
        name = claim.name or ""
        runs = [r for r in self.runs if r.line in lines]
        seen = [r.before.get(name) for r in runs] + [r.after.get(name) for r in runs]
        seen += [e.locals.get(name) for e in self.calls if e.line in lines]  # a def line: the arguments
        if not runs and not any(e.line in lines for e in self.calls):
            return f"line(s) {lines} never ran"
        if any(_equal(claim.value, value) for value in seen):
            return None
        values = sorted({v for v in seen if v is not None})
        return f"{name} was {values or 'never set'} at line(s) {lines}"

    def _loop_counts(self) -> set[int]:
        counts = set()
        for loop in self.loops:
            for frame in {r.frame for r in self.runs}:
                counts.add(sum(1 for r in self.runs if r.frame == frame and r.line == loop.lineno
                               and in_body(loop, r.next_line)))
        return counts
