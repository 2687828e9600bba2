"""Renderings of a Trace: JSON, SemCoder's inline annotation (the NExT-style concise trace: `# [STATE-k]`),
LDB-style blocks, a forward monologue, and CWM's raw frames."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sandbox._render_blocks import render_blocks
    from sandbox._render_cwm import CwmCaps, render_cwm
    from sandbox._render_monologue import render_monologue
    from sandbox._render_semcoder import render_semcoder
    from sandbox._trace_model import Trace

__all__ = [
    "FORMATS", "CwmCaps", "Format", "render", "render_blocks", "render_cwm", "render_json", "render_monologue",
    "render_semcoder",
]

# The renderers load on first use: `semcoder trace-batch --json` (the JSON lines, straight from the child's records)
# needs none of them, and their imports were a tenth of its start-up.
_RENDERERS = {"render_blocks": "sandbox._render_blocks", "CwmCaps": "sandbox._render_cwm",
              "render_cwm": "sandbox._render_cwm", "render_monologue": "sandbox._render_monologue",
              "render_semcoder": "sandbox._render_semcoder"}


def __getattr__(name: str) -> object:
    module = _RENDERERS.get(name)
    if module is None:
        raise AttributeError(f"module 'sandbox.trace_render' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


Format = Literal["json", "semcoder", "blocks", "monologue", "cwm"]
FORMATS: tuple[Format, ...] = ("json", "semcoder", "blocks", "monologue", "cwm")


def render_json(trace: Trace) -> str:
    """The CLI's object on one line (non-ASCII escaped, so any repr survives any terminal)."""
    return json.dumps(trace.cli_json())


def render(trace: Trace, fmt: Format = "json", *, keep_blocks: int = 5, line_offset: int = 0) -> str:
    """`trace` in format `fmt`; `keep_blocks` and `line_offset` apply to blocks and monologue."""
    if fmt == "json":
        return render_json(trace)
    if fmt == "semcoder":
        return __getattr__("render_semcoder")(trace)
    if fmt == "blocks":
        return __getattr__("render_blocks")(trace, keep=keep_blocks)
    if fmt == "monologue":
        return __getattr__("render_monologue")(trace, line_offset=line_offset)
    if fmt == "cwm":
        return __getattr__("render_cwm")(trace)
    raise ValueError(f"unknown trace format {fmt!r}; expected one of {', '.join(FORMATS)}")
