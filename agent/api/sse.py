"""Server-Sent Events of a run: everything after the client's cursor, then live events until `done`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.concurrency import run_in_threadpool

from agent.persistence import TERMINAL, Event, RunStore

POLL_S = 0.2
STATUS_EVERY = 5  # polls between status checks
KEEPALIVE_EVERY = 75  # polls between keep-alive comments (15 s)
GRACE_POLLS = 10  # an ended run's `done` event is written just after its status; wait this long for it


def format_event(event: Event) -> str:
    return f"id: {event.id}\nevent: {event.type}\ndata: {json.dumps(event.data)}\n\n"


async def event_stream(store: RunStore, run_id: str, after: int,
                       disconnected: Callable[[], Awaitable[bool]]) -> AsyncIterator[str]:
    """Replays from `after` (0: the start), then follows; ends after `done` (or if an ended run has none)."""
    yield "retry: 2000\n\n"
    cursor, polls, ended_polls = after, 0, 0
    while not await disconnected():
        events = await run_in_threadpool(store.events_after, run_id, cursor) \
            if store.may_have_events_after(run_id, cursor) else []
        for event in events:
            yield format_event(event)
            cursor = event.id
            if event.type == "done":
                return
        if events:
            continue
        polls += 1
        if ended_polls or polls % STATUS_EVERY == 1:
            row = await run_in_threadpool(store.get, run_id)
            ended_polls += row is None or row.status in TERMINAL
            if ended_polls > GRACE_POLLS:
                return
        if polls % KEEPALIVE_EVERY == 0:
            yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_S)
