"""Traces of many (code, call) rows: the tracer's batches, split over the workers in threads."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from sandbox import JobRunner
from sandbox.tracer import Trace, TraceOptions, TraceRow, trace_batch

# Depth 1: only the function's own frame, so comprehension and helper frames (with object addresses
# in their locals) stay out of the narrative; the monologue then cites only the function's lines.
TRACE_OPTIONS = TraceOptions(max_depth=1, max_events=3_000, call_timeout_s=2.0, repr_chars=400)


def trace_rows(rows: Sequence[tuple[str, str]], workers: int, backend: str = "local",
               options: TraceOptions = TRACE_OPTIONS, runner: JobRunner | None = None) -> list[Trace]:
    """One trace per (code, call), in order; each worker traces a contiguous slice in one sandboxed job.

    The jobs run on `runner` (the caller's sandbox Pool) when given, else each in a cold sandbox of `backend`.
    """
    if not rows:
        return []
    parts = max(1, min(workers, len(rows)))
    size = -(-len(rows) // parts)
    slices = [[TraceRow(code=c, call=call) for c, call in rows[i : i + size]] for i in range(0, len(rows), size)]
    with ThreadPoolExecutor(max_workers=parts) as pool:
        done = pool.map(lambda part: trace_batch(part, options=options, backend=backend, runner=runner), slices)
        return [trace for part in done for trace in part]
