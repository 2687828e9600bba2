"""Teacher-free forward and backward monologues in SemCoder's section format, written from real traces.

Forward: `### Understanding the Function` and `### Key Properties and Constraints` (from the code and
the observed call), then the tracer's own step-by-step `### Execution Simulation` citing `[Lx]` labels
(line + 4, as the prompt labels them) and `### Conclusion`. Backward: the same first two sections,
`### Reverse Deduction` (from the returned value back to the parameters, following which line last set
each value the result depends on, with the values the trace saw), and `### Conclusion`. Both end with
`[/MONOLOGUE]` and the `[ANSWER]` assertion.
"""

from __future__ import annotations

import ast
import io
import itertools
import re
import tokenize

from agent.prompts import LINE_LABEL_OFFSET
from sandbox.trace_render import render_monologue
from sandbox.tracer import Trace

_TYPE_NAMES = {"str": "a string", "int": "an integer", "float": "a float", "bool": "a boolean", "list": "a list",
               "dict": "a dictionary", "tuple": "a tuple", "NoneType": "None", "set": "a set", "bytes": "bytes"}
_MAX_DEDUCTION_STEPS = 8


def rename_entry(code: str, entry: str, new: str = "f") -> str:
    """`code` with every NAME token `entry` renamed (SemCoder's execution prompts always call `f`)."""
    if entry == new:
        return code
    lines = code.splitlines(keepends=True)
    edits = [tok.start for tok in tokenize.generate_tokens(io.StringIO(code).readline)
             if tok.type == tokenize.NAME and tok.string == entry]
    for row, col in reversed(edits):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new + line[col + len(entry) :]
    return "".join(lines)


def answer_block(call_input: str, output: str) -> str:
    return f"[/MONOLOGUE]\n[ANSWER]\nassert f({call_input}) == {output}\n[/ANSWER]"


def forward_monologue(code: str, call_input: str, trace: Trace, description: str = "") -> str:
    """The response of a forward (output prediction) record for `f(call_input)` (entry named f)."""
    simulation = render_monologue(trace, line_offset=LINE_LABEL_OFFSET)
    parts = [_understanding(code, description), _properties(code, call_input, trace), simulation,
             answer_block(call_input, trace.return_repr or "")]
    return "\n\n".join(parts[:-1]) + "\n" + parts[-1]


def backward_monologue(code: str, call_input: str, trace: Trace, description: str = "") -> str:
    """The response of a backward (input prediction) record: deduce `call_input` from the output."""
    output = trace.return_repr or ""
    deduction = ReverseDeduction(code, trace).render()
    conclusion = (f"### Conclusion\nWorking back from the output `{output}`, the input `f({call_input})` satisfies "
                  f"every constraint above, and running it indeed returns `{output}`.")
    parts = [_understanding(code, description), _properties(code, call_input, trace, backward=True), deduction,
             conclusion]
    return "\n\n".join(parts) + "\n" + answer_block(call_input, output)


def _function(code: str) -> ast.FunctionDef:
    tree = ast.parse(code)
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "f")


def _understanding(code: str, description: str) -> str:
    function = _function(code)
    params = [a.arg for a in function.args.args]
    said = _first_sentence(description)
    steps = [_statement_summary(node) for node in function.body]
    text = (f"The function `f` takes {len(params)} parameter{'s' if len(params) != 1 else ''} "
            f"({', '.join(f'`{p}`' for p in params)}).")
    if said:
        text += f" Its purpose: {said}"
    text += " Step by step, it " + "; then it ".join(s for s in steps if s) + "."
    return "### Understanding the Function\n" + text


def _first_sentence(description: str) -> str:
    head, colon, body = description.partition("`: ")
    if not colon:
        body = head
    if body.startswith("Write a Python function"):
        return ""  # the generator's descriptions repeat the code; the step summary says the same
    sentence = body.strip().split("\n\n")[0].replace("\n", " ")
    return sentence if sentence.endswith(".") else sentence + "." if sentence else ""


def _statement_summary(node: ast.stmt) -> str:
    if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return f"sets {', '.join(f'`{ast.unparse(t)}`' for t in targets)} from `{_short(node.value)}`"
    if isinstance(node, ast.For):
        return f"loops over `{_short(node.iter)}` (each item as `{ast.unparse(node.target)}`)"
    if isinstance(node, ast.While):
        return f"repeats its body while `{_short(node.test)}` holds"
    if isinstance(node, ast.If):
        return f"checks whether `{_short(node.test)}`"
    if isinstance(node, ast.Return):
        return f"returns `{_short(node.value)}`" if node.value is not None else "returns None"
    if isinstance(node, ast.Expr):
        return f"evaluates `{_short(node.value)}`"
    if isinstance(node, ast.Try):
        return "runs a block that handles exceptions"
    return f"runs a `{type(node).__name__.lower()}` statement"


def _short(node: ast.AST | None, limit: int = 60) -> str:
    text = ast.unparse(node) if node is not None else "None"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _properties(code: str, call_input: str, trace: Trace, backward: bool = False) -> str:
    function = _function(code)
    values = ast.literal_eval(f"({call_input},)") if call_input.strip() else ()
    bullets = []
    for arg, value in zip(function.args.args, values, strict=False):
        bullets.append(f"- `{arg.arg}` is expected to be {_TYPE_NAMES.get(type(value).__name__, 'a value')}.")
    output_type = _type_of_repr(trace.return_repr)
    bullets.append(f"- The function returns {output_type}.")
    for node in ast.walk(function):
        if isinstance(node, ast.For):
            bullets.append(f"- The loop over `{_short(node.iter)}` runs once per item, so its length decides how "
                           "many updates happen.")
        elif isinstance(node, ast.While):
            bullets.append(f"- The `while` loop stops as soon as `{_short(node.test)}` is false.")
        elif isinstance(node, ast.If):
            bullets.append(f"- The branch on `{_short(node.test)}` decides which statements run.")
    if backward:
        bullets.append("- Any input for which the traced computation ends in the given output is a valid answer.")
    return "### Key Properties and Constraints\n" + "\n".join(dict.fromkeys(bullets))


def _type_of_repr(text: str | None) -> str:
    if text is None:
        return "no value (it raises)"
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return "a value"
    return _TYPE_NAMES.get(type(value).__name__, "a value")


class ReverseDeduction:
    """Walks the data flow backwards from the returned expression, using the values the trace saw."""

    def __init__(self, code: str, trace: Trace) -> None:
        self.lines = code.splitlines()
        self.trace = trace
        self.runs = _top_frame_runs(trace)
        call = next((e for e in trace.events if e.event == "call" and e.depth == 1), None)
        self.arguments = dict(call.locals) if call else {}

    def render(self) -> str:
        output = self.trace.return_repr
        returns = [r for r in self.runs if r["next"] == "return"]
        out = ["### Reverse Deduction"]
        if not returns:
            out.append(f"- The call ends with `{output}`.")
            return "\n".join(out)
        last = returns[-1]
        out.append(f"- The final output is `{output}`, returned at {self._label(last)} by `{self._text(last)}`.")
        index = self.runs.index(last)
        branch = self._branch_before(index)
        if branch:
            out.append(branch)
        pending = _names_read(self._text(last))
        explained: set[str] = set()
        while pending and len(out) <= _MAX_DEDUCTION_STEPS:
            name = pending.pop(0)
            if name in explained:
                continue
            explained.add(name)
            sentence, reads = self._explain(name, last["before"], index)
            out.append(sentence)
            pending.extend(n for n in reads if n not in explained)
        return "\n".join(out)

    def _branch_before(self, index: int) -> str | None:
        """The last condition checked before the return, which decided that this return is reached."""
        for position in range(index - 1, -1, -1):
            run = self.runs[position]
            text = self._text(run)
            if text.startswith(("if ", "elif ", "while ")):
                following = self.runs[position + 1]["line"] if position + 1 < len(self.runs) else None
                truth = "true" if following == run["line"] + 1 else "false"
                names = [n for n in _names_read(text) if n in run["before"]]
                values = ", ".join(f"`{n} = {run['before'][n]}`" for n in names)
                condition = text.split(" ", 1)[1].rstrip(":")
                return (f"- That return is reached because `{condition}` was {truth} at {self._label(run)}"
                        f"{' (with ' + values + ')' if values else ''}.")
        return None

    def _explain(self, name: str, values: dict[str, str], before: int) -> tuple[str, list[str]]:
        setters = [r for r in self.runs[:before] if name in r["changed"]]
        if not setters:
            value = self.arguments.get(name, values.get(name))
            return (f"- `{name}` is a parameter: for the output above it must be `{value}`.", [])
        first, last = setters[0], setters[-1]
        reads = list(dict.fromkeys(n for r in (first, last) for n in _names_read(self._text(r))
                                   if n != name and n in r["before"]))
        needs = ", ".join(f"`{n} = {last['before'].get(n, first['before'].get(n))}`" for n in reads)
        because = f"; this needs {needs}" if needs else ""
        end = f"`{name}` must be `{last['after'].get(name)}`, its value after {self._label(last)} (`{self._text(last)}`)"
        if len(setters) == 1:
            return f"- {end}{because}.", reads
        start = (f"it starts as `{first['after'].get(name)}` at {self._label(first)} (`{self._text(first)}`) "
                 f"and changes {len(setters) - 1} more time{'s' if len(setters) > 2 else ''}")
        return f"- {end}; {start}{because}.", reads

    def _label(self, run: dict) -> str:
        return f"[L{run['line'] + LINE_LABEL_OFFSET}]"

    def _text(self, run: dict) -> str:
        line = run["line"]
        return self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""


def _names_read(text: str) -> list[str]:
    statement = text.rstrip(":")
    for prefix in ("return ", "if ", "elif ", "while "):
        if statement.startswith(prefix):
            statement = statement[len(prefix):]
    loop = re.match(r"for (.+?) in (.+)$", statement)
    if loop:
        statement = loop.group(2)  # what a loop variable depends on is the iterable
    try:
        tree = ast.parse(statement)
    except SyntaxError:
        return []
    return list(dict.fromkeys(n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)))


def _top_frame_runs(trace: Trace) -> list[dict]:
    """Line executions of the first activation: line, locals before and after, what followed."""
    top = next((e.frame for e in trace.events if e.event == "call" and e.depth == 1), None)
    events = [e for e in trace.events if e.frame == top]
    runs = []
    for event, following in itertools.pairwise(events):
        if event.event != "line":
            continue
        changed = {k for k, v in following.locals.items() if event.locals.get(k) != v}
        runs.append({"line": event.line, "before": event.locals, "after": following.locals,
                     "changed": changed, "next": following.event})
    return runs
