"""Splicing an answer into a real file: qualified names, decorators, docstrings, indentation, class wrappers."""

from __future__ import annotations

import pytest
from agent_helpers import ScriptedModel, refined, write

from agent.splice import SpliceError, apply_refined
from agent.state import RunConfig
from agent.tasks import project_task

SOURCE = '''import re


class Parser:
    """Parses."""

    @staticmethod
    def parse(text):
        """Split the text."""
        return text.split(",")

    def run(self):
        return 1


class Other:
    def run(self):
        return 2
'''


def test_an_answer_indented_like_the_prompt_keeps_decorator_and_docstring():
    answer = "    def parse(text):\n        return text.split(';')\n"
    patched = apply_refined(SOURCE, answer, "Parser.parse")
    assert patched == SOURCE.replace('text.split(",")', "text.split(';')")


def test_a_class_wrapped_answer_rewrites_several_methods_of_that_class_only():
    answer = ("class Parser:\n    @staticmethod\n    def parse(text):\n        return text.split('|')\n\n"
              "    def run(self):\n        return 10\n")
    patched = apply_refined(SOURCE, answer, "Parser.parse")
    assert "return text.split('|')" in patched and "        return 10\n" in patched
    assert "class Other:\n    def run(self):\n        return 2\n" in patched  # same name, other class: untouched
    assert '"""Split the text."""' in patched


def test_a_method_of_one_class_never_replaces_the_same_name_in_another():
    patched = apply_refined(SOURCE, "def run(self):\n    return 20\n", "Other.run")
    assert "    def run(self):\n        return 1\n" in patched and "        return 20\n" in patched


def test_an_answer_without_the_function_is_a_splice_error():
    with pytest.raises(SpliceError, match="does not define parse"):
        apply_refined(SOURCE, "def other():\n    pass\n", "Parser.parse")


def test_a_fruitless_suspect_is_passed_over_for_the_next(tmp_path, run_graph):
    """The model's first answers leave the most suspicious function (and the next suspect shown with it) as they
    were; the next step shows another, then the ranking starts again."""
    root = write(tmp_path / "p", {
        "shop.py": "def price(n):\n    return n * 2\n\n\ndef total(items):\n    return sum(price(i) for i in items) + 1\n",
        "test_shop.py": "from shop import price, total\n\n\ndef test_total():\n    assert total([1, 2]) == 6\n\n\n"
                        "def test_price():\n    assert price(3) == 6\n"})
    same_total = "def total(items):\n    return sum(price(i) for i in items) + 1\n"
    fixed_total = "def total(items):\n    return sum(price(i) for i in items)\n"
    model = ScriptedModel([[refined(same_total)], ["no code"], [refined(fixed_total)]])
    final = run_graph(project_task(root), RunConfig(model="x:y", patcher="model", samples=1, max_iterations=4),
                      model)
    traces = [h for h in final["history"] if h["node"] == "trace"]
    assert traces[0]["focus"] == "shop.py::total" and traces[0]["also"] == ["shop.py::price"], traces[0]
    assert traces[1]["focus"] == "shop.py::total" and traces[1]["also"] == ["shop.py::price"], traces[1]  # again
    assert final["status"] == "fixed", final["stop_reason"]


def test_imports_the_answer_needs_are_added_once():
    answer = "import os\nimport re\nfrom json import loads\n\n\ndef run(self):\n    return loads(os.sep)\n"
    patched = apply_refined(SOURCE, answer, "Other.run")
    assert patched.startswith("import re\nimport os\nfrom json import loads\n\n\nclass Parser:")
    assert patched.count("import re") == 1


def test_a_function_with_a_nested_helper_is_replaced_whole_once():
    source = "def outer(x):\n    def helper(y):\n        return y + 1\n    return helper(x)\n\n\ndef other():\n    return 0\n"
    answer = "def outer(x):\n    def helper(y):\n        return y + 2\n\n    return helper(x) * 1\n"
    patched = apply_refined(source, answer, "outer")
    assert patched == answer + "\n\ndef other():\n    return 0\n"
