"""A tiny corpus for the data pipeline's tests: a few kinds of functions the seed extractor must tell apart."""

import os
import re

SEPARATOR = "-"


def slugify(text):
    """Lower-case `text` and join its words with dashes.

    >>> slugify('Hello World')
    'hello-world'
    >>> slugify('  A  b ')
    'a-b'
    """
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)


def count_vowels(word: str) -> int:
    """Count the vowels of a word."""
    total = 0
    for ch in word.lower():
        if ch in "aeiou":
            total += 1
    return total


def chunk(items: list, size: int = 2):
    """Split a list into consecutive pieces of `size` elements (the last may be shorter)."""
    out = []
    for start in range(0, len(items), size):
        out.append(items[start:start + size])
    return out


def save_note(path, text):
    """Write a note to a file (a side effect: must be filtered out)."""
    with open(path, "w") as handle:
        handle.write(text)
    return len(text)


def distinct_letters(text):
    """The distinct letters of a text (their order depends on the hash seed: nondeterministic)."""
    return "".join(set(text))


def environment_size(n):
    """Uses a module the extractor does not allow (os), so it is not self-contained."""
    return len(os.environ) + n


def joined(parts):
    """Join with the module's separator (reads a module global, so it is not self-contained)."""
    return SEPARATOR.join(parts)


def no_docstring(a, b):
    return a * b + 1


def countdown(n):
    """A generator function: its value is not a literal, so it is skipped."""
    while n > 0:
        yield n
        n -= 1
