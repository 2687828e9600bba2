"""CWM's raw-frame layout (facebookresearch/cwm PROMPTING_GUIDE.md) on real traces taken by the tracer's child."""

from __future__ import annotations

import json
import re

from sandbox._render_cwm import CwmCaps, render_cwm
from sandbox.trace_render import render

LOOP = "def f(nums, s):\n    total = 0\n    for n in nums:\n        total += n\n    return s * total\n"


def _frames(text: str) -> list[str]:
    """The frames between <|frame_sep|> tokens (the context and <|end_of_text|> left out)."""
    body = text.split("<|frame_sep|>", 1)[1].removesuffix("<|end_of_text|>")
    parts = body.split("<|frame_sep|>")
    assert parts[-1] == ""  # every frame ends with its <|frame_sep|>
    return parts[:-1]


def test_context_marks_the_entry_and_frames_follow_the_published_layout(child) -> None:
    text = render(child(LOOP, "f([1, 2], 'ab')"), "cwm")
    assert text.startswith("<|trace_context_start|>def f(nums, s):  # << START_OF_TRACE\n    total = 0\n")
    assert text.endswith("<|end_of_text|>")
    frames = _frames(text)
    assert frames[0] == '<|call_sep|>{"nums": "[1, 2]", "s": "\'ab\'"}<|action_sep|>def f(nums, s):\n'
    # Diff-based locals: unchanged values are "..", a changed or new one is its repr as a JSON string.
    assert frames[1] == '<|line_sep|>{"nums": "..", "s": ".."}<|action_sep|>    total = 0\n'
    assert frames[2] == '<|line_sep|>{"nums": "..", "s": "..", "total": "0"}<|action_sep|>    for n in nums:\n'
    assert frames[-1] == '<|return_sep|><|action_sep|>    return s * total<|arg_sep|>"\'ababab\'"'
    kinds = [re.match(r"<\|(\w+)_sep\|>", f).group(1) for f in frames]
    assert kinds == ["call"] + ["line"] * 7 + ["return"]
    for frame in frames[:-1]:
        json.loads(frame.split("<|action_sep|>")[0].split("|>", 1)[1])  # every $LOCALS is a JSON object


def test_a_nested_call_restarts_the_diff_and_an_exception_gets_its_frame(child) -> None:
    code = "def g(x):\n    return x + 1\n\ndef f(x):\n    y = g(x)\n    z = y / 0\n    return z\n"
    frames = _frames(render(child(code, "f(1)"), "cwm"))
    after_return = frames.index('<|return_sep|><|action_sep|>    return x + 1<|arg_sep|>"2"')
    # Back in f after g returned: a change of scope, so every value is written out again.
    assert frames[after_return + 1] == '<|line_sep|>{"x": "1", "y": "2"}<|action_sep|>    z = y / 0\n'
    assert ('<|exception_sep|><|action_sep|>    z = y / 0<|arg_sep|>"ZeroDivisionError: division by zero"'
            in frames)


def test_caps_cut_long_values_and_long_loops(child) -> None:
    trace = child("def f(n):\n    s = 'x' * 50\n    for i in range(n):\n        s += 'y'\n    return len(s)\n",
                  "f(30)")
    full = _frames(render_cwm(trace, CwmCaps(value_chars=1000, line_visits=None)))
    capped = _frames(render_cwm(trace, CwmCaps(value_chars=20, line_visits=3)))
    assert sum("    s += 'y'\n" in f for f in full) == 30
    assert sum("    s += 'y'\n" in f for f in capped) == 3
    assert '"s": "\'xxxxxxxxxxxxxxxx..."' in "".join(capped)  # 17 characters of the repr and "..."
    assert capped[-1] == full[-1] == '<|return_sep|><|action_sep|>    return len(s)<|arg_sep|>"80"'


def test_frames_alone_are_what_follows_a_prompt_that_shows_the_code(child) -> None:
    trace = child(LOOP, "f([3], 'a')")
    whole, frames = render_cwm(trace), render_cwm(trace, context=False)
    assert frames.startswith("<|frame_sep|><|call_sep|>") and "<|trace_context_start|>" not in frames
    assert whole.endswith(frames + "<|end_of_text|>")
