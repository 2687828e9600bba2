"""Candidate inputs: type-aware generation from what a function says about its parameters, and mutation.

Types come from (in order) the generator, annotations, defaults and parameter names; a parameter with
no clue gets values of several types and execution sorts out which work. Inputs are argument lists
written as Python literals. `mutate` is EvalPlus's type-aware mutation: it perturbs inputs that already
ran cleanly (ints +-1 or negated, strings and lists edited, dict entries added or dropped).
"""

from __future__ import annotations

import ast
import random
import string

from training.data.generator import random_value

_ANNOTATIONS = {"int": "int", "str": "str", "float": "float", "bool": "bool", "list": "list_int",
                "dict": "dict", "tuple": "tuple_int", "bytes": "bytes", "set": "list_int", "List": "list_int",
                "Dict": "dict", "Tuple": "tuple_int", "Sequence": "list_int", "Iterable": "list_int",
                "Mapping": "dict"}
_NAME_HINTS = [
    (("text", "string", "word", "line", "prefix", "suffix", "sep", "char", "name", "src", "source", "pattern",
      "path", "msg", "label", "key", "fmt", "encoding", "enc", "value", "s"), "str"),
    (("num", "count", "size", "width", "level", "index", "idx", "pos", "start", "end", "stop", "depth", "indent",
      "length", "limit", "base", "digits", "prec", "year", "month", "day", "n", "i", "j", "k", "m", "e"), "int"),
    (("nums", "numbers", "seq", "items", "lst", "values", "arr", "data", "iterable", "elements", "xs", "list"),
     "list_int"),
    (("words", "names", "strings", "lines", "parts", "args", "tokens"), "list_str"),
    (("dict", "mapping", "table", "counts", "d", "kw"), "dict"),
    (("flag", "strict", "reverse", "verbose", "is_", "use_", "allow"), "bool"),
    (("x", "y", "a", "b", "z", "t", "f", "p", "q"), "number"),
]
_FALLBACK = ("str", "int", "list_int")


def param_kinds(code: str, entry: str, known: list[str] | None = None) -> list[list[str]]:
    """For each parameter of `entry`, the kinds of values worth trying."""
    function = next((n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef) and n.name == entry), None)
    if function is None:
        return []
    args = function.args.args
    if known and len(known) == len(args):
        return [[kind] for kind in known]
    defaults = [None] * (len(args) - len(function.args.defaults)) + list(function.args.defaults)
    return [_kinds_of(arg, default) for arg, default in zip(args, defaults, strict=True)]


def _kinds_of(arg: ast.arg, default: ast.expr | None) -> list[str]:
    if arg.annotation is not None:
        kind = _from_annotation(arg.annotation)
        if kind:
            return [kind]
    if default is not None:
        kind = _from_default(default)
        if kind:
            return [kind]
    name = arg.arg.lower()
    exact = [kind for words, kind in _NAME_HINTS if name in words]
    partial = [kind for words, kind in _NAME_HINTS
               if any(len(w) > 2 and (name.startswith(w) or name.endswith(w)) for w in words)]
    for kind in exact + partial:
        return ["int", "float"] if kind == "number" else [kind]
    return list(_FALLBACK)


def _from_annotation(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(node, ast.Subscript):
        outer = _from_annotation(node.value)
        inner = _from_annotation(node.slice) if not isinstance(node.slice, ast.Tuple) else None
        if outer == "list_int" and inner == "str":
            return "list_str"
        return outer if outer != "Optional" else inner
    if isinstance(node, ast.BinOp):  # X | None
        return _from_annotation(node.left)
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    return "Optional" if name == "Optional" else _ANNOTATIONS.get(name or "")


def _from_default(node: ast.expr) -> str | None:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None
    for kind, test in (("bool", bool), ("int", int), ("float", float), ("str", str), ("bytes", bytes), ("dict", dict)):
        if isinstance(value, test):
            return kind
    if isinstance(value, list | tuple):
        kind = "list_str" if value and isinstance(value[0], str) else "list_int"
        return kind if isinstance(value, list) else "tuple_int"
    return None


def value_of(rng: random.Random, kind: str) -> object:
    if kind in ("str", "int", "list_int", "list_str", "dict"):
        return random_value(rng, kind)
    if kind == "float":
        return round(rng.uniform(-10, 10), rng.choice([0, 1, 2]))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "bytes":
        return random_value(rng, "str").encode()
    if kind == "tuple_int":
        return tuple(random_value(rng, "list_int"))
    raise ValueError(f"unknown input kind {kind!r}")


def literal(args: tuple | list) -> str:
    return ", ".join(repr(value) for value in args)


def candidates(kinds: list[list[str]], rng: random.Random, count: int) -> list[str]:
    """`count` random argument lists; parameters with several possible kinds get each kind in turn."""
    out = []
    for index in range(count):
        args = [value_of(rng, options[index % len(options)]) for options in kinds]
        out.append(literal(args))
    return list(dict.fromkeys(out))


def mutate(text: str, rng: random.Random) -> str | None:
    """One EvalPlus-style mutation of an argument list; None if it has no arguments to change."""
    try:
        args = list(ast.literal_eval(f"({text},)")) if text.strip() else []
    except (ValueError, SyntaxError):
        return None
    if not args:
        return None
    index = rng.randrange(len(args))
    args[index] = _mutate_value(args[index], rng)
    return literal(args)


def _mutate_value(value: object, rng: random.Random) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([value + 1, value - 1, -value, 0, value * 2])
    if isinstance(value, float):
        return rng.choice([value + 1.0, value / 2, -value, 0.0])
    if isinstance(value, str):
        return _mutate_text(value, rng)
    if isinstance(value, bytes):
        return _mutate_text(value.decode(errors="replace"), rng).encode()
    if isinstance(value, list | tuple):
        items = _mutate_sequence(list(value), rng)
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return _mutate_dict(dict(value), rng)
    return value


def _mutate_text(text: str, rng: random.Random) -> str:
    at = rng.randint(0, len(text))
    letter = rng.choice(string.ascii_letters + string.digits + " ")
    options = [text[:at] + letter + text[at:], text + text[: rng.randint(0, 3)]]
    if text:
        options += [text[:at] + text[at + 1 :], text[::-1], text.upper(), text[:at] + letter + text[at + 1 :]]
    return rng.choice(options)


def _mutate_sequence(items: list, rng: random.Random) -> list:
    if items and rng.random() < 0.5:
        at = rng.randrange(len(items))
        choice = rng.choice(["drop", "change", "duplicate", "swap"])
        if choice == "drop":
            return items[:at] + items[at + 1 :]
        if choice == "change":
            return [*items[:at], _mutate_value(items[at], rng), *items[at + 1 :]]
        if choice == "duplicate":
            return [*items[: at + 1], items[at], *items[at + 1 :]]
        other = rng.randrange(len(items))
        items[at], items[other] = items[other], items[at]
        return items
    sample = items[rng.randrange(len(items))] if items else rng.randint(-3, 9)
    return [*items, _mutate_value(sample, rng)]


def _mutate_dict(mapping: dict, rng: random.Random) -> dict:
    if mapping and rng.random() < 0.5:
        key = rng.choice(list(mapping))
        if rng.random() < 0.5:
            mapping.pop(key)
        else:
            mapping[key] = _mutate_value(mapping[key], rng)
        return mapping
    key = rng.choice(["a", "b", "c", "x", "y", "key", "q"])
    mapping[key] = rng.randint(-3, 9)
    return mapping
