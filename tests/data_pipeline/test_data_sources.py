"""Where programs and inputs come from: the corpus extractor, the generator, typed inputs and mutation."""

from __future__ import annotations

import ast
import random
from pathlib import Path

from training.data.corpus import doctest_inputs, seed_functions
from training.data.dedupe import canonical_key
from training.data.generator import generate_program
from training.data.inputs import candidates, mutate, param_kinds


def test_corpus_keeps_only_self_contained_documented_functions(corpus: Path) -> None:
    names = {p.origin.ref.split("::")[1] for p in seed_functions(corpus)}
    # save_note reads `open`, environment_size `os`, joined a module global, countdown yields.
    assert names == {"slugify", "count_vowels", "chunk", "distinct_letters", "digit_sum", "hypotenuse",
                     "spin_forever"}
    undocumented = {p.origin.ref.split("::")[1] for p in seed_functions(corpus, require_docstring=False)}
    assert undocumented - names == {"no_docstring"}


def test_corpus_program_brings_its_imports_doctests_and_description(corpus: Path) -> None:
    slugify = next(p for p in seed_functions(corpus) if p.entry == "slugify")
    assert slugify.code.startswith("import re\n\ndef slugify(text):\n")
    assert '"""' not in slugify.code
    assert slugify.inputs == ["'Hello World'", "'  A  b '"]
    assert slugify.description.startswith("Write a Python function `slugify(text)`: Lower-case `text`")
    assert slugify.origin.ref == "textutil.py::slugify"


def test_doctest_inputs_only_literal_calls_of_the_function() -> None:
    doc = ">>> g(1, [2])\n3\n>>> g(x)\n>>> h(1)\n>>> g(1, key=2)\n>>> g('a')"
    assert doctest_inputs(doc, "g") == ["1, [2]", "'a'"]


def test_generator_is_reproducible_and_uses_every_parameter() -> None:
    assert generate_program(7) == generate_program(7)
    for seed in range(60):
        program = generate_program(seed)
        function = ast.parse(program.code).body[0]
        params = [a.arg for a in function.args.args]
        read = {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert function.name == "f" and set(params) <= read
        assert len(program.param_types) == len(params)
        assert program.description.startswith(f"Write a Python function `f({', '.join(params)})`")


def test_param_kinds_from_hints_defaults_and_names() -> None:
    code = "def g(a: list[str], b=3, text=None, nums=None, mystery=None, flag: 'bool' = False):\n    pass\n"
    assert param_kinds(code, "g") == [["list_str"], ["int"], ["str"], ["list_int"], ["str", "int", "list_int"],
                                      ["bool"]]
    assert param_kinds("def f(x):\n    pass\n", "f", ["dict"]) == [["dict"]]


def test_candidates_and_mutants_are_literals_of_the_right_shape() -> None:
    rng = random.Random(0)
    made = candidates([["list_int"], ["str"]], rng, 10)
    for text in made:
        nums, word = ast.literal_eval(f"({text},)")
        assert isinstance(nums, list) and isinstance(word, str)
        mutated = mutate(text, rng)
        m_nums, m_word = ast.literal_eval(f"({mutated},)")
        assert isinstance(m_nums, list) and isinstance(m_word, str)


def test_canonical_key_ignores_names_docstrings_and_comments() -> None:
    one = "def f(xs):\n    '''doc'''\n    total = 0  # sum\n    for x in xs:\n        total += x\n    return total\n"
    two = "def g(items):\n    acc = 0\n    for it in items:\n        acc += it\n    return acc\n"
    three = "def g(items):\n    acc = 1\n    for it in items:\n        acc += it\n    return acc\n"
    assert canonical_key(one) == canonical_key(two) != canonical_key(three)
