"""The mutation engine's operators, and that a mutant changes only the mutated expression."""

from __future__ import annotations

import ast

from agent.mutation import mutants_at

SOURCE = '''def window_sum(xs, k):  # sum of the first k items
    total = 0
    for i in range(k - 1):
        total += xs[i]
    if total > 10 and k:
        return total
    return i
'''


def descriptions(line: int) -> list[str]:
    return [m.description.split(": ", 1)[1] for m in mutants_at("w.py", SOURCE, line)]


def test_operator_families():
    assert {"0 -> 1", "0 -> -1"} <= set(descriptions(2))
    line3 = descriptions(3)
    assert "range bound k - 1 -> k - 1 + 1" in line3 and "- -> +" in line3 and "1 -> 0" in line3
    assert "+= -> -=" in descriptions(4)
    line5 = descriptions(5)
    assert {"negated condition", "and -> or", "> -> >=", "> -> <", "10 -> 11"} <= set(line5)
    assert {"return i -> return xs", "return i -> return k", "return i -> return total"} == set(descriptions(7))


def test_only_the_mutated_span_changes():
    for line in range(1, 8):
        for mutant in mutants_at("w.py", SOURCE, line):
            ast.parse(mutant.source)
            old, new = SOURCE.splitlines(), mutant.source.splitlines()
            changed = [i + 1 for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
            assert changed == [line], mutant.description
            assert new[0].endswith("# sum of the first k items")


def test_parentheses_keep_precedence():
    source = "def f(a, b, c):\n    return a - b * c\n"
    swapped = {m.description: m.source for m in mutants_at("f.py", source, 2)}
    assert "return a - b / c" in swapped["line 2: * -> /"]
    assert "return (a + b * c)" not in "".join(swapped.values())
    boolean = "def g(a, b, c):\n    return a and b or c\n"
    flipped = [m.source for m in mutants_at("g.py", boolean, 2) if "and -> or" in m.description]
    assert flipped == ["def g(a, b, c):\n    return (a or b) or c\n"]


def test_non_ascii_columns():
    source = 'def f(x):\n    return "ü" * (x < 1)\n'
    mutant = next(m for m in mutants_at("f.py", source, 2) if "< -> <=" in m.description)
    assert mutant.source == 'def f(x):\n    return "ü" * (x <= 1)\n'


def test_no_duplicates_and_no_identity():
    for line in range(1, 8):
        sources = [m.source for m in mutants_at("w.py", SOURCE, line)]
        assert len(sources) == len(set(sources)) and SOURCE not in sources
