"""Progress on stderr (stdout stays for results): a redrawn line on a terminal, sparse lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label, self.total, self.done = label, total, 0
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._tty = self._stream.isatty()
        self._start = self._last = time.monotonic()

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= (0.2 if self._tty else 10.0) or self.done == self.total:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        if not self._enabled:
            return
        elapsed = now - self._start
        line = f"{self.label}: {self.done}/{self.total} ({elapsed:.1f}s)"
        end = "\n" if not self._tty or self.done == self.total else ""
        self._stream.write(("\r" if self._tty else "") + line + end)
        self._stream.flush()
