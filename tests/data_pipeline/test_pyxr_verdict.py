"""PyX-R's verified fixes go through the repair loop's verdict: a fix that forges, or carries what a fix does not
need, never becomes a training record, even when its outputs are right."""

from __future__ import annotations

from training.data.models import Example
from training.data.verify import FixTask, pick_fixes

BUGGY = "def double(x):\n    return x + x + 1\n"
FIXED = "def double(x):\n    return x + x\n"
EXAMPLES = [Example(input="2", output="4"), Example(input="0", output="0")]


def answer(code: str) -> str:
    return ("[MONOLOGUE]\n### Execution Simulation\nIt adds one.\n### Root Cause Analysis\nThe + 1.\n"
            f"### Bug Fixing\nDrop it.\n[/MONOLOGUE]\n\n[Refined]\n```python\n{code}```\n[/Refined]")


def test_a_right_fix_that_adds_an_exit_hook_is_not_verified(executor) -> None:
    hooked = "import atexit\natexit.register(print, 'all tests passed')\n" + FIXED
    gc_read = "import gc\n_n = len(gc.get_objects())\n" + FIXED
    task = FixTask(entry="double", buggy=BUGGY, failing=EXAMPLES[0], examples=EXAMPLES,
                   responses=[answer(hooked), answer(gc_read)])
    assert pick_fixes([task], executor) == [None]
    honest = task.model_copy(update={"responses": [answer(hooked), answer(FIXED)]})
    assert pick_fixes([honest], executor) == [answer(FIXED)]
