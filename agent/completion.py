"""The agent's seam to a language model: blocking calls from graph nodes, one event loop underneath.

Graph nodes are synchronous; the model layer's Generator is async and its clients (HTTP pools, a
loaded checkpoint) belong to one event loop. `LoopModel` keeps that loop alive in a thread so every
call reuses it, whether the graph runs in a script or under a server's own loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Protocol

from agent.models._protocol import GenerationRequest, GenerationResult, Generator


class Model(Protocol):
    def complete(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]: ...


class LoopModel:
    """A Generator made blocking; close() releases the backend and stops the loop."""

    def __init__(self, generator: Generator) -> None:
        self._generator = generator
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="semcoder-model-loop", daemon=True)
        self._thread.start()

    def complete(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return asyncio.run_coroutine_threadsafe(self._generator.generate(list(requests)), self._loop).result()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._generator.aclose(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
