"""Small random programs in CRUXEval's style: string, list and dict manipulation in a function `f`.

A program is a few typed statements drawn from templates over the variables in scope (parameters
first, so every parameter tends to matter), then a return of the last value made. Every template also
says in words what it does, so each program comes with a natural-language description, and the
parameters' types are known, so typed inputs can be drawn for them directly.
"""

from __future__ import annotations

import ast
import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from training.data.models import Origin, Program

TYPES = ("str", "int", "list_int", "list_str", "dict")
_PARAM_NAMES = {
    "str": ["text", "s", "word", "string", "sentence", "st"],
    "int": ["n", "k", "num", "count", "index", "x"],
    "list_int": ["nums", "numbers", "arr", "values", "lst", "items"],
    "list_str": ["words", "names", "strings", "parts", "tokens"],
    "dict": ["d", "counts", "mapping", "scores", "dic"],
}
_TYPE_WORDS = {"str": "a string", "int": "an integer", "list_int": "a list of integers",
               "list_str": "a list of strings", "dict": "a dictionary from strings to integers",
               "bool": "a boolean", "any": "a value"}
_LOCAL_NAMES = ["result", "res", "out", "temp", "acc", "total", "new", "parts", "buf", "ans", "r", "tmp"]
_CHARS = "aeiobcdxyz"
_OPS = ["<", ">", "<=", ">=", "==", "!="]


@dataclass
class _Statement:
    code: str
    phrase: str
    made: str | None  # the variable it (re)defines; None: it mutates or returns

    def reads(self) -> set[str]:
        return {n.id for n in ast.walk(ast.parse(self.code)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@dataclass
class _Builder:
    rng: random.Random
    params: list[tuple[str, str]]
    env: list[tuple[str, str]] = field(default_factory=list)
    statements: list[_Statement] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def pick(self, kind: str) -> str | None:
        """A variable of `kind`, preferring one not used yet (so parameters get used)."""
        names = [n for n, t in self.env if t == kind]
        if not names:
            return None
        fresh = [n for n in names if n not in self.used]
        name = self.rng.choice(fresh or names)
        self.used.add(name)
        return name

    def pick_any(self, kind: str) -> bool:
        return any(t == kind for _, t in self.env)

    def new_name(self) -> str:
        taken = {n for n, _ in self.env}
        free = [n for n in _LOCAL_NAMES if n not in taken]
        return self.rng.choice(free) if free else f"v{len(taken)}"

    def emit(self, code: str, phrase: str, made: tuple[str, str] | None = None) -> None:
        self.statements.append(_Statement(code, phrase, made[0] if made else None))
        if made:
            self.env = [(n, t) for n, t in self.env if n != made[0]] + [made]


Template = Callable[[_Builder], bool]


def _c(rng: random.Random) -> str:
    return repr(rng.choice(_CHARS))


def _str_method(b: _Builder) -> bool:
    s = b.pick("str")
    method, words = b.rng.choice([("upper", "upper case"), ("lower", "lower case"), ("swapcase", "swapped case"),
                                  ("title", "title case"), ("capitalize", "capitalized form"),
                                  ("strip", "stripped form")])
    v = b.new_name()
    b.emit(f"{v} = {s}.{method}()", f"stores the {words} of `{s}` in `{v}`", (v, "str"))
    return True


def _str_replace(b: _Builder) -> bool:
    s, v = b.pick("str"), b.new_name()
    old, new = _c(b.rng), b.rng.choice([_c(b.rng), "''", repr(b.rng.choice(["#", "-", "AB", "!"]))])
    b.emit(f"{v} = {s}.replace({old}, {new})", f"replaces every {old} in `{s}` by {new}, giving `{v}`", (v, "str"))
    return True


def _str_slice(b: _Builder) -> bool:
    s, v = b.pick("str"), b.new_name()
    form, words = b.rng.choice([("[::-1]", "the reverse"), ("[1:]", "all but the first character"),
                                ("[:-1]", "all but the last character"), ("[::2]", "every second character"),
                                (f"[:{b.rng.randint(1, 4)}]", "a prefix"), (f"[{b.rng.randint(1, 3)}:]", "a suffix")])
    b.emit(f"{v} = {s}{form}", f"takes {words} of `{s}` ({form}) as `{v}`", (v, "str"))
    return True


def _str_split(b: _Builder) -> bool:
    s, v = b.pick("str"), b.new_name()
    sep = b.rng.choice(["", repr(" "), _c(b.rng)])
    b.emit(f"{v} = {s}.split({sep})", f"splits `{s}` at {sep or 'whitespace'} into the list `{v}`", (v, "list_str"))
    return True


def _str_count(b: _Builder) -> bool:
    s, v = b.pick("str"), b.new_name()
    method = b.rng.choice(["count", "find", "rfind"])
    ch = _c(b.rng)
    b.emit(f"{v} = {s}.{method}({ch})", f"computes `{s}.{method}({ch})` as `{v}`", (v, "int"))
    return True


def _str_filter_loop(b: _Builder) -> bool:
    s, v = b.pick("str"), b.new_name()
    test = b.rng.choice(["isalpha", "isdigit", "isupper", "islower", "isspace"])
    then = b.rng.choice([f"{v} += ch.upper()", f"{v} = ch + {v}", f"{v} += ch * 2"])
    other = b.rng.choice([f"{v} += {_c(b.rng)}", "continue", f"{v} += ch"])
    code = f"{v} = ''\nfor ch in {s}:\n    if ch.{test}():\n        {then}\n    else:\n        {other}"
    b.emit(code, f"builds `{v}` character by character from `{s}`, treating characters where `{test}()` "
           f"holds differently from the others", (v, "str"))
    return True


def _str_count_dict(b: _Builder) -> bool:
    s, v = b.pick("str") or b.pick("list_str"), b.new_name()
    b.emit(f"{v} = {{}}\nfor ch in {s}:\n    {v}[ch] = {v}.get(ch, 0) + 1",
           f"counts how often each element of `{s}` occurs, in the dictionary `{v}`", (v, "dict"))
    return True


def _str_strip_prefix_loop(b: _Builder) -> bool:
    s, v = b.pick("str"), b.new_name()
    ch = _c(b.rng)
    b.emit(f"i = 0\nwhile i < len({s}) and {s}[i] == {ch}:\n    i += 1\n{v} = {s}[i:]",
           f"drops the leading {ch} characters of `{s}`, giving `{v}`", (v, "str"))
    return True


def _str_concat(b: _Builder) -> bool:
    s = b.pick("str")
    other = b.pick("str") if len([1 for _, t in b.env if t == "str"]) > 1 else _c(b.rng)
    v = b.new_name()
    n = b.pick("int")
    rhs = f"{s} + {other}" if n is None or b.rng.random() < 0.6 else f"{s} * ({n} % 3 + 1)"
    b.emit(f"{v} = {rhs}", f"sets `{v}` to `{rhs}`", (v, "str"))
    return True


def _join(b: _Builder) -> bool:
    words, v = b.pick("list_str"), b.new_name()
    sep = repr(b.rng.choice(["", " ", "-", ",", "_"]))
    b.emit(f"{v} = {sep}.join({words})", f"joins the strings of `{words}` with {sep} into `{v}`", (v, "str"))
    return True


def _length(b: _Builder) -> bool:
    kind = b.rng.choice([t for t in ("str", "list_int", "list_str", "dict") if b.pick_any(t)])
    x, v = b.pick(kind), b.new_name()
    b.emit(f"{v} = len({x})", f"stores the length of `{x}` in `{v}`", (v, "int"))
    return True


def _int_arith(b: _Builder) -> bool:
    n, v = b.pick("int"), b.new_name()
    a, c = b.rng.randint(2, 5), b.rng.randint(1, 9)
    rhs = b.rng.choice([f"{n} * {a} + {c}", f"{n} % {a}", f"{n} // {a} - {c}", f"abs({n} - {c})", f"{n} ** 2 - {c}"])
    b.emit(f"{v} = {rhs}", f"computes `{v} = {rhs}`", (v, "int"))
    return True


def _list_sort(b: _Builder) -> bool:
    kind = "list_int" if b.pick_any("list_int") else "list_str"
    x, v = b.pick(kind), b.new_name()
    form, words = b.rng.choice([(f"sorted({x})", f"`{x}` sorted ascending"),
                                (f"sorted({x}, reverse=True)", f"`{x}` sorted descending"),
                                (f"list(reversed({x}))", f"`{x}` reversed"), (f"{x}[::2]", f"every second element of `{x}`")])
    b.emit(f"{v} = {form}", f"sets `{v}` to {words}", (v, kind))
    return True


def _list_mutate(b: _Builder) -> bool:
    x = b.pick("list_int")
    n = b.pick("int")
    value = n if n is not None else str(b.rng.randint(-5, 9))
    code, words = b.rng.choice([
        (f"{x}.append({value})", f"appends `{value}` to `{x}`"),
        (f"{x}.insert({b.rng.randint(0, 2)}, {value})", f"inserts `{value}` near the front of `{x}`"),
        (f"{x}.reverse()", f"reverses `{x}` in place"),
        (f"{x}.sort()", f"sorts `{x}` in place"),
        (f"if {x}:\n    {x}.pop()", f"removes the last element of `{x}` if there is one"),
    ])
    b.emit(code, words)
    return True


def _list_comprehension(b: _Builder) -> bool:
    x, v = b.pick("list_int"), b.new_name()
    op, c, a = b.rng.choice(_OPS), b.rng.randint(-2, 6), b.rng.randint(2, 4)
    rhs, words = b.rng.choice([
        (f"[e for e in {x} if e {op} {c}]", f"keeps the elements of `{x}` that are {op} {c}"),
        (f"[e * {a} for e in {x}]", f"multiplies each element of `{x}` by {a}"),
        (f"[e % {a} for e in {x}]", f"takes each element of `{x}` modulo {a}"),
        (f"[e for e in {x} if e % 2 == {c % 2}]", f"keeps the elements of `{x}` whose parity is {c % 2}"),
        (f"[{x}[i] - {x}[i - 1] for i in range(1, len({x}))]", f"takes the differences of neighbours in `{x}`"),
    ])
    b.emit(f"{v} = {rhs}", f"{words}, giving `{v}`", (v, "list_int"))
    return True


def _list_reduce(b: _Builder) -> bool:
    x, v = b.pick("list_int"), b.new_name()
    rhs, words = b.rng.choice([(f"sum({x})", "the sum"), (f"max({x}) if {x} else 0", "the largest element (0 if empty)"),
                               (f"min({x}) if {x} else -1", "the smallest element (-1 if empty)"),
                               (f"{x}.count({b.rng.randint(0, 5)})", "a count of one value"),
                               (f"len(set({x}))", "the number of distinct elements")])
    b.emit(f"{v} = {rhs}", f"stores {words} of `{x}` in `{v}`", (v, "int"))
    return True


def _index_loop(b: _Builder) -> bool:
    x, v = b.pick("list_int"), b.new_name()
    op, c = b.rng.choice(_OPS), b.rng.randint(-1, 5)
    update = b.rng.choice([f"{v} += {x}[i]", f"{v} += 1", f"{v} -= i", f"{v} = {v} * 2 + {x}[i]"])
    b.emit(f"{v} = 0\nfor i in range(len({x})):\n    if {x}[i] {op} {c}:\n        {update}",
           f"walks over the indices of `{x}` and updates `{v}` with `{update}` where the element is {op} {c}",
           (v, "int"))
    return True


def _while_pop(b: _Builder) -> bool:
    x, v = b.pick("list_int") or b.pick("list_str"), b.new_name()
    k, end = b.rng.randint(0, 3), b.rng.choice(["0", ""])
    kind = next(t for n, t in b.env if n == x)
    b.emit(f"{v} = {x}[:]\nwhile len({v}) > {k}:\n    {v}.pop({end})",
           f"copies `{x}` to `{v}` and removes elements from its {'front' if end else 'end'} until at most {k} remain",
           (v, kind))
    return True


def _words_transform(b: _Builder) -> bool:
    w, v = b.pick("list_str"), b.new_name()
    op, c = b.rng.choice(_OPS), b.rng.randint(1, 4)
    rhs, kind, words = b.rng.choice([
        (f"[t.upper() for t in {w}]", "list_str", f"upper-cases each string of `{w}`"),
        (f"[t for t in {w} if len(t) {op} {c}]", "list_str", f"keeps the strings of `{w}` whose length is {op} {c}"),
        (f"sorted({w}, key=len)", "list_str", f"sorts `{w}` by length"),
        (f"[t[::-1] for t in {w}]", "list_str", f"reverses each string of `{w}`"),
        (f"{{t: len(t) for t in {w}}}", "dict", f"maps each string of `{w}` to its length"),
    ])
    b.emit(f"{v} = {rhs}", f"{words}, giving `{v}`", (v, kind))
    return True


def _dict_ops(b: _Builder) -> bool:
    d = b.pick("dict")
    key = repr(b.rng.choice(["a", "b", "x", "key", "z"]))
    op, c = b.rng.choice(_OPS), b.rng.randint(0, 4)
    v = b.new_name()
    code, made, words = b.rng.choice([
        (f"{d}[{key}] = {d}.get({key}, 0) + {c}", None, f"adds {c} to the entry {key} of `{d}` (from 0 if absent)"),
        (f"{v} = sorted({d}.items())", (v, "any"), f"lists the items of `{d}` in key order as `{v}`"),
        (f"{v} = sorted({d}, key={d}.get)", (v, "list_str"), f"orders the keys of `{d}` by value as `{v}`"),
        (f"{v} = sum({d}.values())", (v, "int"), f"adds up the values of `{d}` into `{v}`"),
        (f"{v} = {{k: val for k, val in {d}.items() if val {op} {c}}}", (v, "dict"),
         f"keeps the entries of `{d}` whose value is {op} {c}, giving `{v}`"),
        (f"{v} = [k for k in {d} if k in {''.join(b.rng.sample(_CHARS, 4))!r}]", (v, "list_str"),
         f"collects the keys of `{d}` that occur in a fixed string, giving `{v}`"),
    ])
    b.emit(code, words, made)
    return True


def _early_return(b: _Builder) -> bool:
    kinds = [t for t in ("str", "list_int", "int") if b.pick_any(t)]
    if not kinds:
        return False
    kind = b.rng.choice(kinds)
    x = b.pick(kind)
    cond, value, words = {
        "str": (f"not {x}", repr(""), f"`{x}` is empty"),
        "list_int": (f"len({x}) < 2", f"{x}", f"`{x}` has fewer than two elements"),
        "int": (f"{x} < 0", "-1", f"`{x}` is negative"),
    }[kind]
    b.emit(f"if {cond}:\n    return {value}", f"returns `{value}` right away if {words}")
    return True


_TEMPLATES: dict[str, list[Template]] = {
    "str": [_str_method, _str_replace, _str_slice, _str_split, _str_count, _str_filter_loop, _str_count_dict,
            _str_strip_prefix_loop, _str_concat],
    "int": [_int_arith],
    "list_int": [_list_sort, _list_mutate, _list_comprehension, _list_reduce, _index_loop, _while_pop],
    "list_str": [_join, _words_transform, _list_sort],
    "dict": [_dict_ops],
}


def generate_program(seed: int) -> Program:
    """One program; the same seed always gives the same program."""
    for attempt in range(50):
        program = _attempt(random.Random(seed * 1000 + attempt), seed)
        if program is not None:
            return program
    raise RuntimeError(f"the generator found no program for seed {seed}")


def _attempt(rng: random.Random, seed: int) -> Program | None:
    kinds = rng.sample(TYPES, rng.choice([1, 1, 2, 2, 3]))
    if kinds == ["int"]:
        kinds = ["list_int", "int"]
    params = _param_names(rng, kinds)
    builder = _Builder(rng=rng, params=params, env=list(params))
    if rng.random() < 0.25:
        _early_return(builder)
    for _ in range(rng.randint(2, 5)):
        _one_statement(builder)
    returned = _return_value(builder)
    kept = _live(builder.statements, returned)
    reads = set().union(*(s.reads() for s in kept)) if kept else set()
    if not kept or any(name not in reads for name, _ in params):
        return None  # a parameter nothing reads would only confuse the description
    signature = ", ".join(n for n, _ in params)
    body = "\n".join("    " + line for s in kept for line in s.code.split("\n"))
    code = f"def f({signature}):\n{body}\n    return {returned}\n"
    return Program(code=code, entry="f", description=_describe(params, [s.phrase for s in kept], returned),
                   origin=Origin(kind="generator", ref=f"seed {seed}"), param_types=[t for _, t in params])


def _live(statements: list[_Statement], returned: str) -> list[_Statement]:
    """The statements the returned value depends on (an early return always counts)."""
    live = {n.id for n in ast.walk(ast.parse(returned)) if isinstance(n, ast.Name)}
    kept: list[_Statement] = []
    for statement in reversed(statements):
        reads = statement.reads()
        needed = statement.made in live if statement.made else bool(reads & live) or "return" in statement.code
        if needed:
            kept.append(statement)
            if statement.made and statement.made not in reads:
                live.discard(statement.made)
            live |= reads
    return kept[::-1]


def _one_statement(b: _Builder, kind: str | None = None) -> None:
    kinds = [kind] if kind else sorted({t for _, t in b.env if t in _TEMPLATES})
    if not kinds:
        return
    template = b.rng.choice(_TEMPLATES[b.rng.choice(kinds)])
    template(b)


def _param_names(rng: random.Random, kinds: list[str]) -> list[tuple[str, str]]:
    return [(rng.choice(_PARAM_NAMES[kind]), kind) for kind in kinds]


def _return_value(b: _Builder) -> str:
    made = [n for n, _ in b.env if n not in dict(b.params)]
    last = made[-1] if made else b.env[-1][0]
    if len(made) >= 2 and b.rng.random() < 0.2:
        return f"({made[-2]}, {last})"
    return last


def _describe(params: list[tuple[str, str]], phrases: list[str], returned: str) -> str:
    args = ", ".join(f"`{name}` ({_TYPE_WORDS[kind]})" for name, kind in params)
    steps = "; then it ".join(phrases)
    signature = ", ".join(n for n, _ in params)
    return (f"Write a Python function `f({signature})` that takes {args}. "
            f"The function {steps}. Finally it returns `{returned}`.")


def random_value(rng: random.Random, kind: str) -> object:
    """A random value of a generator type, biased toward the characters the templates test for."""
    if kind == "str":
        alphabet = rng.choice([_CHARS, _CHARS + "  ", string.ascii_letters, _CHARS + "0123", "aAbB1 #"])
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
    if kind == "int":
        return rng.randint(-5, 20)
    if kind == "list_int":
        return [rng.randint(-5, 12) for _ in range(rng.randint(0, 7))]
    if kind == "list_str":
        return [random_value(rng, "str")[:5] for _ in range(rng.randint(0, 5))]
    if kind == "dict":
        return {rng.choice(["a", "b", "x", "key", "z", "c", "y"]): rng.randint(-3, 9) for _ in range(rng.randint(0, 4))}
    raise ValueError(f"unknown generator type {kind!r}")
