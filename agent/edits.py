"""How the model's answer says its edit: a whole function, SEARCH/REPLACE blocks, or a unified diff.

`apply_edit` turns one answer into the files it changes, or a problem worded for a person and for the model's next
prompt ("your SEARCH block 2 did not match any lines of shop/prices.py; the closest lines are 40-44: ..."). Model
output is data: nothing here raises on it. Reasoning sections (<think>, <thinking>, <reasoning>) are cut off before
any parsing and returned beside the result.

Decisions:
- All or nothing: when one block or hunk of an answer does not apply, none does (half an answer is not the model's
  fix). The answer's whole function is tried next, where it has one (SemCoder answers in [Refined] whatever it is
  asked); if that fails too, the block's or hunk's problem is the one reported.
- Files: a path line before a block (or a diff's ---/+++ header) names its file; a block without one takes the
  previous block's file, the first block the focus file. Only the given files change: a path outside them is a
  problem, never a new file (a patch may change the task's editable files only).
- An empty SEARCH appends its REPLACE to the end of the file, and only to a file the block names explicitly; without
  a path line it is a problem (which file, and where?).
- Matching, in order: the exact lines; the same lines up to trailing spaces, surrounding blank lines and one
  indentation shift (the REPLACE is shifted likewise, so the file keeps its indentation); lines equal once stripped.
  Several matches at a level are a problem, not a guess; a diff hunk takes the one nearest its @@ line (that is what
  the header is for), and a hunk found nowhere is retried without up to 2 context lines at either end.
- An edit that leaves a Python file that parsed unparsable is a problem.
"""

from __future__ import annotations

import ast
import difflib
import re
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from agent.chat_prompts import WHOLE_FUNCTION_ANSWER
from agent.models import Resolved as Dialect
from agent.parsing import ParseError, parse_refined
from agent.splice import SpliceError, apply_refined, split_by_file

EditFormat = Literal["function", "search_replace", "udiff"]
EditSetting = Literal["auto", "function", "search_replace", "udiff"]
ProblemKind = Literal["missing", "unterminated", "malformed", "no_match", "ambiguous", "outside", "does_not_fit"]

SHORT_FILE_LINES = 150  # up to this, rewriting the function is cheap and the most robust answer


class EditTarget(BaseModel):
    """Where the answer's edit goes by default (the loop's Focus has these fields)."""

    file: str
    function: str | None = None
    whole_file: bool = False


class EditProblem(BaseModel):
    kind: ProblemKind
    message: str = Field(description="What failed and where, addressed to the model (it is fed back to it).")
    file: str | None = None
    part: int | None = Field(None, description="The 1-based SEARCH block or diff hunk that failed.")


class EditResult(BaseModel):
    """The files an answer changes, or why it could not be applied; and its reasoning either way."""

    files: dict[str, str] = Field(default_factory=dict, description="The changed files, path -> new text.")
    problem: EditProblem | None = None
    applied_as: EditFormat | None = Field(None, description="The format that applied (a fallback: 'function').")
    reasoning: str = Field("", description="The answer's <think>/<thinking>/<reasoning> text, cut off before "
                           "parsing.")
    notes: list[str] = Field(default_factory=list, description="What was got around, e.g. a block the whole "
                             "function replaced.")


def apply_edit(answer: str, fmt: EditFormat, files: dict[str, str], target: EditTarget, *,
               finish_reason: str | None = None) -> EditResult:
    """The answer applied to `files` (the editable files as they are now) in format `fmt`."""
    text, reasoning, cut = split_reasoning(answer)
    if cut and not text.strip():
        detail = "the answer was cut inside its reasoning (<think> not closed)" if finish_reason == "length" \
            else "the answer is all reasoning (<think> not closed), with no edit after it"
        return EditResult(problem=EditProblem(kind="unterminated" if finish_reason == "length" else "missing",
                                              message=detail), reasoning=reasoning)
    if fmt == "function":
        done = _whole_function(parse_refined(text, finish_reason=finish_reason), files, target)
    else:
        done = (_search_replace if fmt == "search_replace" else _udiff)(text, files, target, finish_reason)
        if not isinstance(done, EditProblem):
            done = _unparsable(files, done) or done
        if isinstance(done, EditProblem):
            fallback = _whole_function(_function_code(text, target), files, target)
            if not isinstance(fallback, EditProblem):
                return EditResult(files=_changed(files, fallback), applied_as="function", reasoning=reasoning,
                                  notes=[f"{done.message}; applied the answer's whole function instead"])
            if done.kind == "missing" and fallback.kind != "missing":
                done = fallback  # no blocks at all, and code that does not fit: that is the answer's problem
    if isinstance(done, EditProblem):
        return EditResult(problem=done, reasoning=reasoning)
    return EditResult(files=_changed(files, done), applied_as=fmt, reasoning=reasoning)


def _changed(before: dict[str, str], after: dict[str, str]) -> dict[str, str]:
    return {path: text for path, text in after.items() if before.get(path) != text}


# --- choosing and explaining a format -------------------------------------------------------------------------


def default_format(dialect: Dialect, file_lines: int) -> EditFormat:
    """SemCoder was trained to rewrite the function; a chat model edits a long file by blocks (fewer tokens,
    nothing else of the file retyped)."""
    return "search_replace" if dialect == "chat" and file_lines > SHORT_FILE_LINES else "function"


def chosen_format(setting: EditSetting, dialect: Dialect, source: str) -> EditFormat:
    """The run's --edit-format, with auto resolved for the file under repair."""
    return default_format(dialect, source.count("\n") + 1) if setting == "auto" else setting


_INSTRUCTIONS: dict[EditFormat, str] = {
    "function": WHOLE_FUNCTION_ANSWER,
    "search_replace": "Answer with SEARCH/REPLACE blocks: the file's path on its own line, then `<<<<<<< SEARCH`, "
                      "lines copied exactly from the file (enough to match one place only), `=======`, the lines "
                      "that replace them, and `>>>>>>> REPLACE`. Use one block per change. For example:\n"
                      "shop/prices.py\n<<<<<<< SEARCH\n    return total * rate\n=======\n"
                      "    return total * (1 + rate)\n>>>>>>> REPLACE",
    "udiff": "Answer with a unified diff in one ```diff block: `--- a/PATH` and `+++ b/PATH`, then `@@` hunks whose "
             "unchanged lines start with a space, removed lines with -, added lines with +; keep 2-3 unchanged "
             "lines around each change. For example:\n```diff\n--- a/shop/prices.py\n+++ b/shop/prices.py\n"
             "@@ -40,2 +40,2 @@\n def total(items, rate):\n-    return total * rate\n"
             "+    return total * (1 + rate)\n```",
}


def instructions(fmt: EditFormat) -> str:
    """What a chat prompt says to get an answer in `fmt` (SemCoder's raw prompt says nothing: it has [Refined])."""
    return _INSTRUCTIONS[fmt]


# --- reasoning sections ---------------------------------------------------------------------------------------

_OPEN = r"(?im)^[ \t]*<(think|thinking|reasoning)>"
_SECTION = re.compile(_OPEN + r"(?s:(.*?))</\1>")
_OPENING = re.compile(_OPEN)
_CLOSING = re.compile(r"(?i)</(think|thinking|reasoning)>")


def split_reasoning(answer: str) -> tuple[str, str, bool]:
    """(the answer without its reasoning, the reasoning, whether a section was left open: the answer was cut)."""
    parts: list[str] = []
    closing, opening = _CLOSING.search(answer), _OPENING.search(answer)
    if closing and (opening is None or opening.start() > closing.start()):
        # Only the closing tag: the chat template opened the section in the prompt (R1- and Qwen3-style).
        parts.append(answer[:closing.start()])
        answer = answer[closing.end():]

    def keep(match: re.Match[str]) -> str:
        parts.append(match.group(2))
        return ""

    answer = _SECTION.sub(keep, answer)
    unclosed = _OPENING.search(answer)
    if unclosed and answer[:unclosed.start()].strip():
        unclosed = None  # a tag in the middle of the text, never closed: not a section (only a cut one is)
    if unclosed:
        parts.append(answer[unclosed.end():])
        answer = answer[:unclosed.start()]
    reasoning = "\n\n".join(part.strip() for part in parts if part.strip())
    return answer.strip("\n"), reasoning, unclosed is not None


# --- whole function -------------------------------------------------------------------------------------------


def _whole_function(code: str | ParseError, files: dict[str, str],
                    target: EditTarget) -> dict[str, str] | EditProblem:
    """The existing splice: the answer's defs replace the file's of the same names; other files' defs go there."""
    if isinstance(code, ParseError):
        return EditProblem(kind=code.problem, message=code.detail)
    parts = {target.file: code} if target.whole_file else split_by_file(code, target.file, files)
    try:
        return {path: apply_refined(files[path], part,
                                    (None if target.whole_file else target.function) if path == target.file else "")
                for path, part in parts.items() if path != target.file or len(parts) == 1
                or any(not line.startswith(("import ", "from ")) for line in part.splitlines() if line.strip())}
    except SpliceError as exc:
        return EditProblem(kind="does_not_fit", message=str(exc), file=target.file)


_FENCED = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n(.*?)(?:```|\Z)", re.S)


def _function_code(text: str, target: EditTarget) -> str | ParseError:
    """A complete function in an answer that was meant to be blocks or hunks: [Refined] code, else the first fenced
    block that parses and defines a function (the function under repair where it has a name)."""
    if "[Refined]" in text:
        return parse_refined(text, finish_reason="stop")
    leaf = (target.function or "").rsplit(".", 1)[-1]
    for match in _FENCED.finditer(text):
        code = match.group(1).strip("\n")
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        if names and (not leaf or leaf in names):
            return code
    return ParseError(problem="missing", detail="no complete function in the answer")


# --- locating lines -------------------------------------------------------------------------------------------


class _Match(NamedTuple):
    start: int
    end: int
    indents: dict[str, str] | None  # the answer's indentation -> the file's, seen on the matched lines (None: exact)
    trimmed: tuple[int, int]  # blank lines the match left off the answer's lines (at the start, at the end)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _trim(needle: list[str]) -> tuple[int, int]:
    lead = next((i for i, line in enumerate(needle) if line.strip()), len(needle))
    trail = next((i for i, line in enumerate(reversed(needle)) if line.strip()), len(needle))
    return lead, trail


def _uniform_shift(window: list[str], core: list[str]) -> bool:
    """Whether the file's lines are the answer's moved by one indentation (more or less in front of each)."""
    pairs = [(_indent(a), _indent(b)) for a, b in zip(window, core, strict=True) if b.strip()]
    have, want = pairs[0][1], pairs[0][0]
    if want.endswith(have):
        return all(f == want[: len(want) - len(have)] + a for f, a in pairs)
    if have.endswith(want):
        cut = len(have) - len(want)
        return all(a.startswith(have[:cut]) and f == a[cut:] for f, a in pairs)
    return False


def _reindent(line: str, indents: dict[str, str]) -> str:
    """An answer's line with the file's indentation: the deepest indentation seen that it starts with, mapped, plus
    the rest of its own (a new nested line); less indented than any seen, moved as the least indented was."""
    if not line.strip():
        return ""
    own = _indent(line)
    seen = [have for have in indents if own.startswith(have)]
    if seen:
        have = max(seen, key=len)
        return indents[have] + own[len(have):] + line.lstrip(" \t")
    have = min(indents, key=len)
    width = max(0, len(own) + len(indents[have]) - len(have))
    return ("\t" if indents[have].startswith("\t") else " ") * width + line.lstrip(" \t")


def _matches(lines: list[str], needle: list[str]) -> list[_Match]:
    """Where `needle` is in `lines` (both without line ends), at the first level that finds it."""
    lead, trail = _trim(needle)
    core = needle[lead:len(needle) - trail]
    if not core:
        return []  # blank lines match everywhere: not a place
    count = len(needle)
    exact = [_Match(i, i + count, None, (0, 0)) for i in range(len(lines) - count + 1)
             if lines[i:i + count] == needle]
    if exact:
        return exact
    for strict in (True, False):
        found = []
        for i in range(len(lines) - len(core) + 1):
            window = lines[i:i + len(core)]
            if any(a.strip() != b.strip() for a, b in zip(window, core, strict=True)):
                continue
            if strict and not _uniform_shift(window, core):
                continue
            indents: dict[str, str] = {}
            for a, b in zip(window, core, strict=True):
                if b.strip():
                    indents.setdefault(_indent(b), _indent(a))
            found.append(_Match(i, i + len(core), indents, (lead, trail)))
        if found:
            return found
    return []


def _closest(lines: list[str], needle: list[str]) -> str:
    """'; the closest lines are 40-44:' and those lines, or that no lines are close."""
    want = "\n".join(line.strip() for line in needle if line.strip())
    size = max(1, len([line for line in needle if line.strip()]))
    scored = []
    for i in range(max(1, len(lines) - size + 1)):
        matcher = difflib.SequenceMatcher(None, want, "\n".join(line.strip() for line in lines[i:i + size]),
                                          autojunk=False)
        scored.append((matcher.quick_ratio(), i, matcher))
    best = max(((m.ratio(), -i) for _, i, m in sorted(scored, reverse=True)[:20]), default=(0.0, 0))
    if best[0] < 0.5:
        return "; no lines of the file are close to them"
    start = -best[1]
    shown = lines[start:start + min(size, 8)]
    lead, trail = _trim(shown)
    shown, start = shown[lead:len(shown) - trail], start + lead
    where = f"line is {start + 1}" if len(shown) == 1 else f"lines are {start + 1}-{start + len(shown)}"
    return f"; the closest {where}:\n" + "\n".join(shown)


def _where(starts: list[int]) -> str:
    return ", ".join(str(s + 1) for s in starts[:6]) + (", ..." if len(starts) > 6 else "")


class _Lines:
    """A file as lines without their ends, written back with its own line end."""

    def __init__(self, text: str) -> None:
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.final = text.endswith(("\n", "\r")) or not text
        self.lines = text.splitlines()

    def splice(self, match: _Match, new: list[str]) -> int:
        """Puts `new` (the answer's lines, blank lines trimmed as the match did) in; returns the change in length."""
        blank_lead, blank_trail = _trim(new)
        lead, trail = min(match.trimmed[0], blank_lead), min(match.trimmed[1], blank_trail)
        new = new[lead:len(new) - trail] if lead < len(new) - trail else []
        shifted = new if match.indents is None else [_reindent(line, match.indents) for line in new]
        self.lines[match.start:match.end] = shifted
        return len(shifted) - (match.end - match.start)

    def text(self) -> str:
        body = self.newline.join(self.lines)
        return body + self.newline if self.lines and self.final else body


# --- SEARCH/REPLACE -------------------------------------------------------------------------------------------

_HEAD = re.compile(r"^\s*<{5,9}\s*SEARCH\b")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_TAIL = re.compile(r"^\s*>{5,9}\s*REPLACE\b")
_FENCE_LINE = re.compile(r"^\s*```\s*([A-Za-z0-9_+-]*)\s*(\S*)\s*$")
# A path has a folder or a source file's extension: `Item.is_bulk` on its own line before a block is not a file.
_PATH = re.compile(r"^[/\\]?(?:[\w.\-]+[/\\])+[\w.\-]+\.\w+$"
                   r"|^[\w.\-]+\.(?:py|pyi|pyx|txt|cfg|toml|ini|json|ya?ml|md|rst)$")


class _Block(NamedTuple):
    path: str | None  # as the answer names it
    named: bool  # named on its own line (not carried over from an earlier block)
    search: list[str]
    replace: list[str]


def _path_line(line: str) -> str | None:
    """A file path a line names (`shop/prices.py`, "# File: shop/prices.py", "**`shop/prices.py`**:")."""
    fence = _FENCE_LINE.match(line)
    if fence:
        return fence.group(2) if _PATH.match(fence.group(2) or "") else None
    text = line.strip().strip("*`'\" ").rstrip(":").strip("*`'\" ")
    text = re.sub(r"^(#+|//)\s*", "", text)
    text = re.sub(r"^(file|path|filename|in)\s*:?\s+", "", text, flags=re.I).strip("*`'\" ")
    return text if _PATH.match(text) else None


def _named_before(lines: list[str], at: int) -> str | None:
    """The path on the last line before a block that is not blank or a bare fence (three lines back at most)."""
    for line in reversed(lines[max(0, at - 3):at]):
        fence = _FENCE_LINE.match(line)
        if not line.strip() or (fence and not fence.group(2)):
            continue
        return _path_line(line)
    return None


def _parse_blocks(text: str, finish_reason: str | None) -> list[_Block] | EditProblem:
    lines = text.splitlines()
    blocks: list[_Block] = []
    path: str | None = None
    i = 0
    while i < len(lines):
        if not _HEAD.match(lines[i]):
            i += 1
            continue
        number = len(blocks) + 1
        named = _named_before(lines, i)
        path = named or path
        j = i + 1
        while j < len(lines) and not (_DIVIDER.match(lines[j]) or _HEAD.match(lines[j]) or _TAIL.match(lines[j])):
            j += 1
        k = j + 1
        while k < len(lines) and not (_TAIL.match(lines[k]) or _HEAD.match(lines[k]) or _DIVIDER.match(lines[k])):
            k += 1
        if j >= len(lines) or k >= len(lines) or not _DIVIDER.match(lines[j]) or not _TAIL.match(lines[k]):
            if finish_reason == "length" and k >= len(lines):
                return EditProblem(kind="unterminated", part=number,
                                   message=f"your SEARCH block {number} was cut at max_tokens before its end")
            return EditProblem(kind="malformed", part=number, message=f"your SEARCH block {number} is not "
                               "`<<<<<<< SEARCH`, lines, `=======`, lines, `>>>>>>> REPLACE`")
        blocks.append(_Block(path, named is not None, lines[i + 1:j], lines[j + 1:k]))
        i = k + 1
    if not blocks:
        return EditProblem(kind="missing", message="there is no SEARCH/REPLACE block (`<<<<<<< SEARCH` ... "
                           "`>>>>>>> REPLACE`) in your answer")
    return blocks


def _resolve(path: str | None, files: dict[str, str], default: str) -> str | None:
    """The given file a path names: itself, or the one file it is a suffix of (or that is a suffix of it)."""
    if path is None:
        return default
    path = path.replace("\\", "/").removeprefix("./")
    if path in files:
        return path
    found = [f for f in files if f.endswith("/" + path) or path.endswith("/" + f)]
    return found[0] if len(found) == 1 else None


def _outside(path: str, files: dict[str, str], what: str) -> EditProblem:
    return EditProblem(kind="outside", file=path, message=f"{what} names {path}, which is not one of the files you "
                       f"may edit ({', '.join(sorted(files)[:10])})")


def _search_replace(text: str, files: dict[str, str], target: EditTarget,
                    finish_reason: str | None) -> dict[str, str] | EditProblem:
    blocks = _parse_blocks(text, finish_reason)
    if isinstance(blocks, EditProblem):
        return blocks
    edited: dict[str, _Lines] = {}
    for number, block in enumerate(blocks, 1):
        path = _resolve(block.path, files, target.file)
        if path is None:
            return _outside(str(block.path), files, f"your SEARCH block {number}")
        lines = edited.setdefault(path, _Lines(files[path]))
        if not any(line.strip() for line in block.search):
            if not block.named:
                return EditProblem(kind="malformed", file=path, part=number, message=f"your SEARCH block {number} "
                                   "is empty: copy the lines it replaces, or name the file on the line before the "
                                   "block to add its REPLACE lines at the end of that file")
            gap = [""] * (2 if lines.lines and lines.lines[-1].strip() else 0)
            lines.lines += gap + _trim_lines(block.replace)
            continue
        found = _matches(lines.lines, block.search)
        if not found:
            return EditProblem(kind="no_match", file=path, part=number,
                               message=f"your SEARCH block {number} did not match any lines of {path}"
                               + _closest(lines.lines, block.search))
        if len(found) > 1:
            return EditProblem(kind="ambiguous", file=path, part=number,
                               message=f"your SEARCH block {number} matches {len(found)} places in {path} (lines "
                               f"{_where([m.start for m in found])}): add lines around it so it matches one only")
        lines.splice(found[0], block.replace)
    return {path: lines.text() for path, lines in edited.items()}


def _trim_lines(lines: list[str]) -> list[str]:
    lead, trail = _trim(lines)
    return lines[lead:len(lines) - trail]


# --- unified diff ---------------------------------------------------------------------------------------------

_HUNK = re.compile(r"^@@+\s*(?:-(\d+)(?:,\d+)?)?\s*(?:\+\d+(?:,\d+)?)?\s*@@+")
_DIFF_PATH = re.compile(r"^(?:---|\+\+\+)\s+(\S+)")
FUZZ = 2  # context lines a hunk may drop at either end


class _Hunk(NamedTuple):
    path: str | None
    header: str
    line: int | None  # the old side's 1-based start, as the header says
    body: list[tuple[str, str]]  # (' ' | '-' | '+', text)
    closed: bool  # something followed it (a fence, another hunk, prose): it was not cut off at the end of the text


def _diff_path(line: str) -> str | None:
    match = _DIFF_PATH.match(line)
    path = match.group(1) if match else None
    if path is None or path == "/dev/null":
        return None
    return re.sub(r"^[ab]/", "", path)


def _parse_hunks(text: str) -> list[_Hunk]:
    lines = text.splitlines()
    hunks: list[_Hunk] = []
    path: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            path = _diff_path(lines[i + 1]) or _diff_path(line)
            i += 2
            continue
        header = _HUNK.match(line)
        if not header:
            i += 1
            continue
        body: list[tuple[str, str]] = []
        i += 1
        while i < len(lines):
            line = lines[i]
            if _HUNK.match(line) or line.startswith("```") or (
                    line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")):
                break
            if line == "":
                body.append((" ", ""))  # a blank context line whose space was lost
            elif line[0] in " -+":
                body.append((line[0], line[1:]))
            elif not line.startswith("\\"):  # "\ No newline at end of file" is not a line
                break
            i += 1
        while body and body[-1] == (" ", ""):
            body.pop()
        hunks.append(_Hunk(path, header.group(0), int(header.group(1)) if header.group(1) else None, body,
                           i < len(lines)))
    return hunks


def _udiff(text: str, files: dict[str, str], target: EditTarget,
           finish_reason: str | None) -> dict[str, str] | EditProblem:
    hunks = _parse_hunks(text)
    if finish_reason == "length" and hunks and not hunks[-1].closed:  # its last lines may be missing
        return EditProblem(kind="unterminated", part=len(hunks), message="your diff was cut at max_tokens")
    hunks = [h for h in hunks if h.body]
    if not hunks:
        return EditProblem(kind="missing", message="there is no diff hunk (`@@ ... @@` and its lines) in your answer")
    edited: dict[str, _Lines] = {}
    offsets: dict[str, int] = {}
    counts: dict[str, int] = {}
    for hunk in hunks:
        path = _resolve(hunk.path, files, target.file)
        if path is None:
            return _outside(str(hunk.path), files, "your diff")
        number = counts[path] = counts.get(path, 0) + 1
        lines = edited.setdefault(path, _Lines(files[path]))
        expected = None if hunk.line is None else max(hunk.line - 1, 0) + offsets.get(path, 0)
        placed = _place(lines.lines, hunk.body, expected)
        if isinstance(placed, str):
            return EditProblem(kind="ambiguous" if placed.startswith(" match ") else "no_match", file=path,
                               part=number, message=f"hunk {number} of {path} ({hunk.header}) did not apply: its "
                               f"lines{placed}")
        match, new = placed
        offsets[path] = offsets.get(path, 0) + lines.splice(match, new)
    return {path: lines.text() for path, lines in edited.items()}


def _place(lines: list[str], body: list[tuple[str, str]], expected: int | None) -> tuple[_Match, list[str]] | str:
    """Where a hunk goes and its new lines; else what went wrong (' were not found; the closest...')."""
    lead = next((i for i, (tag, _) in enumerate(body) if tag != " "), len(body))
    trail = next((i for i, (tag, _) in enumerate(reversed(body)) if tag != " "), len(body))
    for fuzz in range(FUZZ + 1):
        part = body[min(fuzz, lead):len(body) - min(fuzz, trail)]
        old = [text for tag, text in part if tag != "+"]
        new = [text for tag, text in part if tag != "-"]
        if not old:
            if expected is None:
                return " have no unchanged or removed line to find their place by, and the @@ line no line number"
            at = min(expected, len(lines))
            return _Match(at, at, None, (0, 0)), new
        found = _matches(lines, old)
        if len(found) > 1 and expected is None:
            return f" match {len(found)} places (lines {_where([m.start for m in found])}) and the @@ line gives " \
                   "no line number"
        if found:
            return min(found, key=lambda m: abs(m.start - expected) if expected is not None else 0), new
        if fuzz >= max(lead, trail):
            break
    old = [text for tag, text in body if tag != "+"]
    return " were not found" + _closest(lines, old)


# --- checks ---------------------------------------------------------------------------------------------------


def _unparsable(before: dict[str, str], after: dict[str, str]) -> EditProblem | None:
    for path, text in after.items():
        if not path.endswith(".py") or text == before.get(path):
            continue
        try:
            ast.parse(before.get(path, ""))
        except SyntaxError:
            continue  # it did not parse before: not this edit's doing
        try:
            ast.parse(text)
        except SyntaxError as exc:
            return EditProblem(kind="does_not_fit", file=path, message=f"after your edits {path} does not parse: "
                               f"line {exc.lineno}: {exc.msg}")
    return None
