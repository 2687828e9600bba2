"""LDB-style view: the executed basic blocks, each with the locals before and after it.

A block is a run of line executions in one activation along straight-line code: it ends at a branch,
loop, return or raise, at the end of a body, or where control jumps. Only the first and last
`keep` blocks are shown, with a marker for the ones left out in between.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox._trace_model import Trace
from sandbox._trace_steps import LineRun, SourceMap, line_runs


@dataclass
class Block:
    runs: list[LineRun]

    @property
    def first(self) -> LineRun:
        return self.runs[0]

    @property
    def last(self) -> LineRun:
        return self.runs[-1]


def render_blocks(trace: Trace, keep: int = 5) -> str:
    source = SourceMap(trace.source)
    blocks = basic_blocks(line_runs(trace), source)
    shown: list[tuple[int, Block] | None] = list(enumerate(blocks))
    if len(blocks) > 2 * keep:
        shown = [*shown[:keep], None, *shown[-keep:]]
    out = [f"[CALL] {trace.call}"]
    for item in shown:
        if item is None:
            out.append(f"[... {len(blocks) - 2 * keep} blocks omitted ...]")
        else:
            out.extend(_render_block(item[0], item[1], source))
    out.append(_outcome(trace))
    return "\n".join(out)


def basic_blocks(runs: list[LineRun], source: SourceMap) -> list[Block]:
    blocks: list[Block] = []
    open_blocks: dict[int, Block] = {}
    for run in runs:
        current = open_blocks.get(run.frame)
        if current is not None and _continues(current.last, run, source):
            current.runs.append(run)
            continue
        block = Block([run])
        blocks.append(block)
        open_blocks[run.frame] = block
    return blocks


def _continues(previous: LineRun, run: LineRun, source: SourceMap) -> bool:
    return previous.next_event == "line" and previous.next_line == run.line == source.falls_through_to(previous.line)


def _render_block(number: int, block: Block, source: SourceMap) -> list[str]:
    first, last = block.first, block.last
    span = f"line {first.line}" if first.line == last.line else f"lines {first.line}-{last.line}"
    lines = [f"[BLOCK-{number}] {first.func}, {span}", f"# state before: {_state(first.before)}"]
    lines.extend(f"    {source.text(run.line)}" for run in block.runs)
    if last.closed_at >= 0:
        lines.append(f"# state after: {_state(last.after)}")
    return lines


def _state(snapshot: dict[str, str]) -> str:
    return "{" + ", ".join(f"{name}: {text}" for name, text in snapshot.items()) + "}"


def _outcome(trace: Trace) -> str:
    suffix = " (trace truncated)" if trace.truncated else ""
    if trace.exception is not None:
        return f"[EXCEPTION] {trace.exception}{suffix}"
    return f"[RETURN] {trace.return_repr}{suffix}"
