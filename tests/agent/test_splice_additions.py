"""Splicing what a fix adds beyond rewritten defs: module constants, class attributes, new functions and methods."""

import ast

import pytest

from agent.splice import SpliceError, apply_refined

SOURCE = '''import re

patterns = (
    'a',
)


class Foo(Base):
    """Doc."""
    _URL = 'x'

    def m(self):
        return self._URL

    def __len__(self):
        return 1


def f():
    return patterns


if __name__ == "__main__":
    f()
'''


def test_a_module_constant_is_replaced_and_a_new_function_goes_before_the_main_block():
    answer = "import os\n\npatterns = (\n    'b',\n)\n\ndef f():\n    return patterns + ()\n\ndef helper(x):\n    return x\n"
    patched = apply_refined(SOURCE, answer, "f")
    ast.parse(patched)
    assert "'b'" in patched and "'a'" not in patched
    assert patched.count("patterns = (") == 1
    assert patched.index("def helper") < patched.index('if __name__ == "__main__":')
    assert "import os\n" in patched and "return patterns + ()" in patched


def test_a_class_wrapper_replaces_attributes_and_appends_new_methods_in_order():
    answer = ("class Foo:\n    _URL = 'y'\n    def __len__(self):\n        return 2\n"
              "    def __bool__(self):\n        return True\n    __nonzero__ = __bool__\n")
    patched = apply_refined(SOURCE, answer, "Foo.__len__")
    namespace: dict = {"Base": object}
    exec(compile(patched.replace('if __name__ == "__main__":', "if False:"), "m", "exec"), namespace)
    foo = namespace["Foo"]()
    assert foo._URL == "y" and len(foo) == 2 and foo.__nonzero__() is True
    assert patched.count("_URL =") == 1 and '"""Doc."""' in patched


def test_a_missing_function_is_added_and_one_not_defined_is_refused():
    patched = apply_refined(SOURCE, "def urlencode(x):\n    return x\n", "urlencode")
    assert "def urlencode(x):" in patched and patched.index("def urlencode") < patched.index("if __name__")
    with pytest.raises(SpliceError, match="does not define urlencode"):
        apply_refined(SOURCE, "def other(x):\n    return x\n", "urlencode")


def test_an_unchanged_constant_leaves_the_file_as_it_was():
    answer = "patterns = (\n    'a',\n)\n\ndef f():\n    return patterns\n"
    assert apply_refined(SOURCE, answer, "f") == SOURCE


def test_a_new_conditional_block_defining_the_missing_name_goes_at_the_end():
    answer = ("import struct\n\ntry:\n    struct.pack('!I', 0)\nexcept TypeError:\n    def struct_pack(spec, *args):\n"
              "        return struct.pack(spec.encode(), *args)\nelse:\n    struct_pack = struct.pack\n")
    patched = apply_refined(SOURCE, answer, "struct_pack")
    namespace: dict = {"Base": object, "__name__": "m"}
    exec(compile(patched, "m", "exec"), namespace)
    assert namespace["struct_pack"]("!I", 1) == b"\x00\x00\x00\x01"
    assert patched.index("try:") < patched.index('if __name__ == "__main__":')


def test_a_method_whose_string_has_lines_at_column_zero_goes_back_unchanged():
    # tqdm's methods hold multi-line strings with lines at column 0: dedenting by the common prefix moved nothing,
    # and the splice then indented the method twice.
    source = 'class T:\n    x = 1\n\n    def m(self):\n        s = """\nflush left\n"""\n        return s\n\n\nprint(T)\n'
    from agent.localize import function_source

    shown = function_source(source, "T.m")
    assert apply_refined(source, shown, "T.m") == source
    changed = shown.replace("return s", "return s + 'x'")
    patched = apply_refined(source, changed, "T.m")
    assert "\n        return s + 'x'\n" in patched and '"""\nflush left\n"""' in patched
