"""Edit formats on real files: a 300-line module (shop/prices.py) and a small one (shop/tax.py), each answer as a
model would write it, with what the result must be or the problem it must name."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.edits import (
    EditTarget,
    apply_edit,
    chosen_format,
    default_format,
    instructions,
    split_reasoning,
)
from agent.parsing import parse_refined
from agent.splice import apply_refined

SHOP = Path(__file__).resolve().parent / "edit_fixtures"
PRICES, TAX = "shop/prices.py", "shop/tax.py"
FILES = {path: (SHOP / path).read_text() for path in (PRICES, TAX)}
AT_ITEM_TOTAL = EditTarget(file=PRICES, function="item_total")
AT_CART_TOTAL = EditTarget(file=PRICES, function="Cart.total")
AT_WITH_TAX = EditTarget(file=TAX, function="with_tax")


def sr(search: str, replace: str, path: str | None = None) -> str:
    return (f"{path}\n" if path else "") + f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def changed(path: str, old: str, new: str) -> str:
    """The fixture file with one exact, unique change."""
    assert FILES[path].count(old) == 1, old
    return FILES[path].replace(old, new)


def test_the_fixture_is_a_long_module_and_a_short_one():
    assert len(FILES[PRICES].splitlines()) > 290 and len(FILES[TAX].splitlines()) < 20


# --- SEARCH/REPLACE -------------------------------------------------------------------------------------------


def test_an_exact_block_changes_those_lines_of_the_long_module_only():
    old = "    total = item.subtotal()\n    total -= bulk_discount(item)\n"
    new = "    total = item.subtotal()\n    total -= bulk_discount(item) * 2\n"
    answer = f"The bulk discount is applied once.\n```python\n{sr(old, new)}```\n"
    result = apply_edit(answer, "search_replace", FILES, AT_ITEM_TOTAL)
    assert result.problem is None and result.applied_as == "search_replace"
    assert result.files == {PRICES: changed(PRICES, old, new)}


def test_an_exact_block_on_the_small_file():
    answer = sr("    return amount * rate(region)\n", "    return amount * (1 + rate(region))\n", TAX)
    result = apply_edit(answer, "search_replace", FILES, AT_WITH_TAX)
    assert result.files == {TAX: changed(TAX, "amount * rate(region)", "amount * (1 + rate(region))")}


def test_a_dedented_block_with_trailing_spaces_keeps_the_files_indentation():
    # The method as a model copies it out of its class: at column 0, with trailing blanks and a blank line around.
    search = "\ndef total(self) -> float:   \n    total = cart_total(self.items.values())\n" \
             "    for discount in self.discounts:  \n        total = discount.apply(total)\n\n"
    replace = "\ndef total(self) -> float:\n    total = cart_total(self.items.values())\n" \
              "    for discount in self.discounts:\n        total = discount.apply(total)\n" \
              "        total = max(total, 0.0)\n\n"
    result = apply_edit(sr(search, replace), "search_replace", FILES, AT_CART_TOTAL)
    assert result.problem is None, result.problem
    old = "            total = discount.apply(total)\n        return round_price(total)\n"
    assert result.files[PRICES] == changed(
        PRICES, old, "            total = discount.apply(total)\n            total = max(total, 0.0)\n"
                     "        return round_price(total)\n")


def test_an_over_indented_block_is_shifted_back():
    search = "        if item.is_bulk():\n            return item.subtotal() * BULK_DISCOUNT\n"
    replace = "        if item.is_bulk() and item.unit_price > 0:\n            return item.subtotal() * BULK_DISCOUNT\n"
    result = apply_edit(sr(search, replace), "search_replace", FILES, EditTarget(file=PRICES))
    assert result.files[PRICES] == changed(PRICES, "    if item.is_bulk():\n",
                                           "    if item.is_bulk() and item.unit_price > 0:\n")


def test_lines_equal_once_stripped_match_when_the_indentation_is_mixed_up():
    search = "def loyalty_points(total: float) -> int:\n  \"\"\"One point per full 10 EUR spent.\"\"\"\n" \
             "  return int(total // 10)\n"
    replace = "def loyalty_points(total: float) -> int:\n  \"\"\"One point per full 10 EUR spent.\"\"\"\n" \
              "  return int(total // 10) if total > 0 else 0\n"
    result = apply_edit(sr(search, replace), "search_replace", FILES, EditTarget(file=PRICES))
    assert result.problem is None, result.problem
    assert result.files[PRICES] == changed(PRICES, "    return int(total // 10)\n",
                                           "    return int(total // 10) if total > 0 else 0\n")


def test_several_blocks_in_one_file_apply_in_order():
    answer = (sr("BULK_THRESHOLD = 10\n", "BULK_THRESHOLD = 12\n") + "\nand\n\n"
              + sr("    if len(cart) > 20:\n        return 9.90\n", "    if len(cart) > 20:\n        return 11.90\n")
              + sr("        return 11.90\n", "        return 12.90\n"))  # the third edits what the second wrote
    result = apply_edit(answer, "search_replace", FILES, EditTarget(file=PRICES))
    expected = changed(PRICES, "BULK_THRESHOLD = 10\n", "BULK_THRESHOLD = 12\n").replace(
        "        return 9.90\n", "        return 12.90\n")
    assert result.files == {PRICES: expected}


def test_blocks_for_several_files_each_name_their_file():
    answer = ("# File: shop/tax.py\n```python\n" + sr("RATES = {\"north\": 0.2, \"south\": 0.1}\n",
                                                     "RATES = {\"north\": 0.2, \"south\": 0.1, \"east\": 0.15}\n")
              + "```\n\n**`prices.py`**:\n```python\n" + sr("CURRENCY = \"EUR\"\n", "CURRENCY = \"USD\"\n") + "```\n")
    result = apply_edit(answer, "search_replace", FILES, AT_WITH_TAX)
    assert result.problem is None, result.problem
    assert result.files == {TAX: changed(TAX, "0.1}", "0.1, \"east\": 0.15}"),
                            PRICES: changed(PRICES, "CURRENCY = \"EUR\"", "CURRENCY = \"USD\"")}


def test_a_name_on_the_line_before_a_block_is_not_a_file():
    answer = "`Item.is_bulk`:\n" + sr("        return self.quantity >= BULK_THRESHOLD\n",
                                      "        return self.quantity >= BULK_THRESHOLD > 0\n")
    result = apply_edit(answer, "search_replace", FILES, EditTarget(file=PRICES, function="Item.is_bulk"))
    assert result.files == {PRICES: changed(PRICES, ">= BULK_THRESHOLD\n", ">= BULK_THRESHOLD > 0\n")}


def test_a_file_with_crlf_line_ends_keeps_them():
    files = {TAX: FILES[TAX].replace("\n", "\r\n")}
    answer = sr("def with_tax(amount, region):\n    return amount * rate(region)\n",
                "def with_tax(amount, region):\n    return amount * (1 + rate(region))\n", TAX)
    result = apply_edit(answer, "search_replace", files, AT_WITH_TAX)
    assert result.files == {TAX: changed(TAX, "amount * rate(region)", "amount * (1 + rate(region))").replace(
        "\n", "\r\n")}


def test_an_ambiguous_block_is_a_problem_not_a_guess():
    result = apply_edit(sr("    return total\n", "    return round_price(total)\n"), "search_replace", FILES,
                        AT_ITEM_TOTAL)
    assert result.files == {} and result.problem.kind == "ambiguous" and result.problem.part == 1
    assert result.problem.message.startswith("your SEARCH block 1 matches 4 places in shop/prices.py (lines 72, 79, "
                                             "86, 283)")


def test_a_block_that_does_not_match_names_the_closest_lines():
    answer = sr("X = 1\n", "X = 2\n") + "\n" + sr(
        "def bulk_discount(item: Item) -> float:\n    if item.is_bulky():\n",
        "def bulk_discount(item: Item) -> float:\n    if item.is_bulk():\n")
    result = apply_edit(answer, "search_replace", FILES, AT_ITEM_TOTAL)
    assert result.files == {} and result.problem.kind == "no_match"
    assert result.problem.message == ("your SEARCH block 1 did not match any lines of shop/prices.py; no lines of "
                                      "the file are close to them")
    first_ok = sr("CURRENCY = \"EUR\"\n", "CURRENCY = \"USD\"\n") + answer.split("\n", 5)[-1]
    result = apply_edit(first_ok, "search_replace", FILES, AT_ITEM_TOTAL)
    assert result.files == {}  # all or nothing: block 1 applied, block 2 did not
    assert result.problem.message == ("your SEARCH block 2 did not match any lines of shop/prices.py; the closest "
                                      "lines are 63-64:\ndef bulk_discount(item: Item) -> float:\n"
                                      "    if item.is_bulk():")


def test_a_block_that_does_not_match_falls_back_to_the_answers_whole_function():
    fixed = "def with_tax(amount, region):\n    return amount * (1 + rate(region))\n"
    answer = (sr("    return amount * rate(regions)\n", "    return amount * (1 + rate(region))\n", TAX)
              + f"\nOr, the whole function:\n```python\n{fixed}```\n")
    result = apply_edit(answer, "search_replace", FILES, AT_WITH_TAX)
    assert result.problem is None and result.applied_as == "function"
    assert result.files == {TAX: apply_refined(FILES[TAX], fixed, "with_tax")}
    assert result.notes == ["your SEARCH block 1 did not match any lines of shop/tax.py; the closest line is 11:\n"
                            "    return amount * rate(region); applied the answer's whole function instead"]


def test_a_semcoder_answer_asked_for_blocks_is_applied_as_its_function():
    answer = "### Root Cause Analysis\nNo 1 +.\n[Refined]\n```python\ndef with_tax(amount, region):\n" \
             "    return amount * (1 + rate(region))\n```\n[/Refined]"
    result = apply_edit(answer, "search_replace", FILES, AT_WITH_TAX)
    assert result.applied_as == "function" and "(1 + rate(region))" in result.files[TAX]
    result = apply_edit(answer.replace("def with_tax(", "def with_tax(:"), "search_replace", FILES, AT_WITH_TAX)
    assert result.problem.kind == "does_not_fit" and "does not parse" in result.problem.message


def test_an_empty_search_appends_only_to_a_file_named_explicitly():
    addition = "def without_tax(amount, region):\n    return amount / (1 + rate(region))\n"
    result = apply_edit(sr("", addition, TAX), "search_replace", FILES, AT_WITH_TAX)
    assert result.files == {TAX: FILES[TAX] + "\n\n" + addition}
    unnamed = apply_edit(sr("", addition), "search_replace", FILES, AT_WITH_TAX)
    assert unnamed.problem.kind == "malformed" and "is empty" in unnamed.problem.message


def test_a_path_outside_the_editable_files_is_a_problem():
    result = apply_edit(sr("", "x = 1\n", "shop/new_module.py"), "search_replace", FILES, AT_WITH_TAX)
    assert result.problem.kind == "outside" and result.problem.message.startswith(
        "your SEARCH block 1 names shop/new_module.py, which is not one of the files you may edit")


def test_blocks_cut_at_max_tokens_and_blocks_missing_their_end():
    cut = "<<<<<<< SEARCH\n    return amount * rate(region)\n=======\n    return amount * (1 +"
    result = apply_edit(cut, "search_replace", FILES, AT_WITH_TAX, finish_reason="length")
    assert result.problem.kind == "unterminated" and "cut at max_tokens" in result.problem.message
    result = apply_edit(cut + " rate(region))\n", "search_replace", FILES, AT_WITH_TAX, finish_reason="stop")
    assert result.problem.kind == "malformed" and "`>>>>>>> REPLACE`" in result.problem.message
    nothing = apply_edit("The bug is in with_tax.", "search_replace", FILES, AT_WITH_TAX)
    assert nothing.problem.kind == "missing" and "no SEARCH/REPLACE block" in nothing.problem.message


def test_an_edit_that_breaks_the_syntax_is_a_problem():
    result = apply_edit(sr("    return amount * rate(region)\n", "    return amount * (1 + rate(region)\n"),
                        "search_replace", FILES, AT_WITH_TAX)
    assert result.files == {} and result.problem.kind == "does_not_fit"
    assert result.problem.message.startswith("after your edits shop/tax.py does not parse: line 11")


# --- unified diff ---------------------------------------------------------------------------------------------


def test_a_diff_with_wrong_line_numbers_is_placed_by_its_context():
    diff = ("```diff\n--- a/shop/prices.py\n+++ b/shop/prices.py\n"
            "@@ -12,6 +12,6 @@ def shipping_for(cart: Cart) -> float:\n"
            "     if cart_total(cart.items.values()) >= 50:\n         return 0.0\n-    if len(cart) > 20:\n"
            "+    if len(cart) >= 20:\n         return 9.90\n     return 4.90\n```\n")
    result = apply_edit(diff, "udiff", FILES, EditTarget(file=PRICES, function="shipping_for"))
    assert result.problem is None and result.applied_as == "udiff"
    assert result.files == {PRICES: changed(PRICES, "if len(cart) > 20:", "if len(cart) >= 20:")}


def test_diff_hunks_over_two_files_with_lost_spaces_and_indentation():
    # A blank context line without its space; the method's lines shown 4 columns left of the file's.
    diff = ("--- shop/tax.py\n+++ shop/tax.py\n@@ -9,3 +9,3 @@\n\n def with_tax(amount, region):\n"
            "-    return amount * rate(region)\n+    return amount * (1 + rate(region))\n"
            "--- a/shop/prices.py\n+++ b/shop/prices.py\n@@ -150,4 +150,4 @@\n def is_empty(self) -> bool:\n"
            "-    return not self.items\n+    return len(self.items) == 0\n \n def __len__(self) -> int:\n"
            "@@ -30,2 +30,2 @@\n     def is_bulk(self) -> bool:\n-        return self.quantity >= BULK_THRESHOLD\n"
            "+        return self.quantity > BULK_THRESHOLD\n")
    result = apply_edit(diff, "udiff", FILES, AT_WITH_TAX)
    assert result.problem is None, result.problem
    assert result.files == {
        TAX: changed(TAX, "amount * rate(region)", "amount * (1 + rate(region))"),
        PRICES: changed(PRICES, "        return not self.items\n", "        return len(self.items) == 0\n").replace(
            "self.quantity >= BULK_THRESHOLD", "self.quantity > BULK_THRESHOLD")}


def test_a_context_found_in_several_places_takes_the_one_nearest_its_header():
    diff = "@@ -280,1 +280,1 @@\n-    return total\n+    return round_price(total)\n"  # the 4th of 4 such lines
    lines = apply_edit(diff, "udiff", FILES, EditTarget(file=PRICES)).files[PRICES].splitlines()
    assert lines[282] == "    return round_price(total)" and lines[71] == lines[78] == "    return total"
    moved = apply_edit(diff.replace("-280", "-80"), "udiff", FILES, EditTarget(file=PRICES))
    lines = moved.files[PRICES].splitlines()
    assert lines[78] == "    return round_price(total)" and lines[282] == "    return total"
    no_number = apply_edit(diff.replace("-280,1 +280,1", ""), "udiff", FILES, EditTarget(file=PRICES))
    assert no_number.problem.kind == "ambiguous" and no_number.problem.message == (
        "hunk 1 of shop/prices.py (@@  @@) did not apply: its lines match 4 places (lines 72, 79, 86, 283) and "
        "the @@ line gives no line number")


def test_a_hunk_that_does_not_apply_is_named_and_nothing_is_applied():
    diff = ("--- a/shop/prices.py\n+++ b/shop/prices.py\n@@ -13,1 +13,1 @@\n-CURRENCY = \"EUR\"\n+CURRENCY = \"USD\"\n"
            "@@ -90,3 +90,3 @@\n def cheapest(items: list[Item]) -> Item | None:\n-    if items is None:\n"
            "+    if not items:\n         return None\n")
    result = apply_edit(diff, "udiff", FILES, AT_ITEM_TOTAL)
    assert result.files == {} and result.problem.kind == "no_match" and result.problem.part == 2
    assert result.problem.message == ("hunk 2 of shop/prices.py (@@ -90,3 +90,3 @@) did not apply: its lines were not "
                                      "found; the closest lines are 89-91:\n"
                                      "def cheapest(items: list[Item]) -> Item | None:\n    if not items:\n"
                                      "        return None")


def test_a_hunk_whose_edge_context_is_wrong_applies_with_fuzz():
    diff = ("@@ -56,4 +56,4 @@\n def parse_price(text: str) -> float:\n"
            "     \"\"\"'12.50 EUR' or '12.50' -> 12.5.\"\"\"\n"
            "-    number = text.strip().removesuffix(CURRENCY).strip()\n"
            "+    number = text.strip().removesuffix(CURRENCY).strip().replace(',', '.')\n"
            "     return float(number)\n     # a line the file does not have\n")
    result = apply_edit(diff, "udiff", FILES, EditTarget(file=PRICES))
    assert result.files == {PRICES: changed(PRICES, ".removesuffix(CURRENCY).strip()\n",
                                            ".removesuffix(CURRENCY).strip().replace(',', '.')\n")}


def test_a_diff_cut_at_max_tokens_is_not_applied_in_part():
    diff = "```diff\n@@ -9,3 +9,3 @@\n def with_tax(amount, region):\n-    return amount * rate(region)\n"
    cut = apply_edit(diff, "udiff", FILES, AT_WITH_TAX, finish_reason="length")
    assert cut.problem.kind == "unterminated" and cut.problem.message == "your diff was cut at max_tokens"
    whole = apply_edit(diff + "+    return amount * (1 + rate(region))\n```\nDone.", "udiff", FILES, AT_WITH_TAX,
                       finish_reason="length")  # cut after the diff: the diff is whole
    assert whole.files == {TAX: changed(TAX, "amount * rate(region)", "amount * (1 + rate(region))")}


def test_no_diff_at_all_is_a_problem_or_the_whole_function():
    assert apply_edit("I would change the rate.", "udiff", FILES, AT_WITH_TAX).problem.kind == "missing"
    fixed = "```python\ndef with_tax(amount, region):\n    return amount * (1 + rate(region))\n```"
    assert apply_edit(fixed, "udiff", FILES, AT_WITH_TAX).applied_as == "function"


# --- whole function (today's answer) --------------------------------------------------------------------------


def test_the_function_format_is_the_existing_splice():
    answer = ("[MONOLOGUE]\n### Execution Simulation\nruns\n### Root Cause Analysis\nrounds\n[Refined]\n```python\n"
              "def total(self) -> float:\n    total = cart_total(self.items.values())\n    return round_price(total)\n"
              "```\n[/Refined]")
    result = apply_edit(answer, "function", FILES, AT_CART_TOTAL)
    assert result.applied_as == "function" and result.reasoning == ""
    assert result.files == {PRICES: apply_refined(FILES[PRICES], parse_refined(answer), "Cart.total")}
    assert "    def total(self) -> float:\n        total = cart_total(self.items.values())\n" \
           "        return round_price(total)\n" in result.files[PRICES]
    bad = apply_edit("[Refined]\ndef other():\n    pass\n[/Refined]", "function", FILES, AT_CART_TOTAL)
    assert bad.problem.kind == "does_not_fit" and bad.problem.message == "the refined code does not define total()"


# --- reasoning sections ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["think", "thinking", "reasoning"])
def test_reasoning_is_cut_off_before_parsing_and_returned(tag):
    wrong = sr("    return amount * rate(regions)\n", "nothing\n")  # a draft inside the reasoning: never applied
    answer = (f"<{tag}>\nThe tax is added, not multiplied. A first try:\n{wrong}Not that.\n</{tag}>\n\n"
              + sr("    return amount * rate(region)\n", "    return amount * (1 + rate(region))\n", TAX))
    result = apply_edit(answer, "search_replace", FILES, AT_WITH_TAX)
    assert result.problem is None and "(1 + rate(region))" in result.files[TAX]
    assert result.reasoning.startswith("The tax is added, not multiplied.") and result.reasoning.endswith("Not that.")


def test_a_reasoning_cut_at_max_tokens_is_an_unterminated_answer_with_its_reasoning_kept():
    answer = "<think>\nLet me trace with_tax(100, 'north'): rate is 0.2, so it returns"
    result = apply_edit(answer, "search_replace", FILES, AT_WITH_TAX, finish_reason="length")
    assert result.files == {} and result.problem.kind == "unterminated"
    assert result.problem.message == "the answer was cut inside its reasoning (<think> not closed)"
    assert result.reasoning == answer.removeprefix("<think>\n")
    assert apply_edit(answer, "function", FILES, AT_WITH_TAX).problem.kind == "missing"


def test_a_reasoning_opened_by_the_chat_template_ends_at_its_closing_tag():
    text, reasoning, cut = split_reasoning("rate is a fraction\n</think>\nThe fix:\n```python\nx = 1\n```")
    assert (text, reasoning, cut) == ("\nThe fix:\n```python\nx = 1\n```".strip("\n"), "rate is a fraction", False)


def test_semcoder_answers_are_untouched_by_the_reasoning_cut():
    answer = ("[MONOLOGUE]\n### Execution Simulation\nwith_tax(100, 'north') returns 20.0\n### Root Cause Analysis\n"
              "<think> is not a tag here\n[Refined]\n```python\ndef with_tax(amount, region):\n"
              "    return amount * (1 + rate(region))\n```\n[/Refined]")
    assert split_reasoning(answer) == (answer, "", False)
    result = apply_edit(answer, "function", FILES, AT_WITH_TAX)
    assert result.files == {TAX: apply_refined(FILES[TAX], parse_refined(answer), "with_tax")}


# --- choosing and explaining --------------------------------------------------------------------------------------


def test_the_default_format_by_dialect_and_file_length():
    assert default_format("semcoder", 2000) == "function"
    assert default_format("chat", 150) == "function" and default_format("chat", 151) == "search_replace"
    assert chosen_format("auto", "chat", FILES[PRICES]) == "search_replace"
    assert chosen_format("auto", "chat", FILES[TAX]) == "function"
    assert chosen_format("udiff", "semcoder", FILES[TAX]) == "udiff"


@pytest.mark.parametrize("fmt", ["search_replace", "udiff"])
def test_each_instructions_example_is_an_answer_this_module_applies(fmt):
    text = instructions(fmt)
    assert len(text) < 600
    source = "def total(items, rate):\n    return total * rate\n"
    result = apply_edit(text, fmt, {"shop/prices.py": source}, EditTarget(file="shop/prices.py"))
    assert result.files == {"shop/prices.py": source.replace("total * rate", "total * (1 + rate)")}
