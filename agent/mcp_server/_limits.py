"""Size caps on what a tool answers: an MCP result lands in a model's context, so no text in it may be unbounded.

A cut is never silent: every helper returns a note saying what was cut and from what size, and the tool puts it
in its result's `notes`.
"""

from __future__ import annotations


def capped(text: str, limit: int, what: str) -> tuple[str, str | None]:
    """`text` cut to `limit` characters (its head and its tail, where the end of a program's output or a traceback
    usually is), and a note when it was cut."""
    if len(text) <= limit:
        return text, None
    marker = f"\n[... {len(text) - limit} characters cut ...]\n"
    head = max(0, (limit - len(marker)) * 2 // 3)
    tail = max(0, limit - len(marker) - head)
    return (text[:head] + marker + (text[-tail:] if tail else ""),
            f"{what} cut to {limit} of {len(text)} characters (the middle is left out; the server's cap is "
            f"--max-output-chars / SEMCODER_MAX_OUTPUT_CHARS)")


def tail_of(text: str, limit: int) -> str:
    """The last `limit` characters of a failure message (where pytest puts the error), marked when cut."""
    return text if len(text) <= limit else "[...]" + text[-limit:]
