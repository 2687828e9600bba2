"""A run's events as ACP `session/update`s: the same mapping live (as the run goes) and on `session/load` (replayed
from the run store), so an editor shows a reopened run exactly as it showed it the first time.

- `started`: the plan (the loop's steps), updated as steps complete;
- `node` execute: a tool call of kind `execute` per test run, with each candidate's pass/fail counts; the
  candidates it tested get their own tool calls updated (completed, or failed with why);
- `node` trace: a tool call of kind `read` with the failing call, the rendered trace and the suspects, located at
  the top suspect's line;
- `node` reason: the model's answers (its monologue) as `agent_thought_chunk`s;
- `node` patch: one `edit` tool call per candidate, its diff and the files it changes;
- `done`: a closing agent message.
Tool call ids are the run id and the event id: stable across a replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from acp import (
    plan_entry,
    start_tool_call,
    text_block,
    tool_content,
    tool_diff_content,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
    update_tool_call,
    update_user_message_text,
)
from acp.schema import ToolCallLocation

from agent.persistence import Event

_STEPS = [("execute", "Run the tests and confirm each candidate in the sandbox"),
          ("trace", "Trace the failing test and rank the suspects"),
          ("reason", "Reason about the bug over the real execution (the model's monologue)"),
          ("patch", "Propose candidate patches")]


class RunView:
    """Turns one run's events, in order, into session updates. `root`: the project directory (file locations)."""

    def __init__(self, run_id: str, root: str, uses_model: bool, originals: Mapping[str, str] | None = None) -> None:
        self._run_id = run_id
        self._root = Path(root)
        self._originals = originals  # the task's files: candidates are shown as diffs of them (else as diff text)
        self._steps = [(node, text) for node, text in _STEPS if uses_model or node != "reason"]
        self._done_steps: set[str] = set()
        self._current = ""
        self._pending: dict[str, str] = {}  # candidate origin -> its tool call id, until it is tested
        self._shown_plan: list[tuple[str, str]] = []

    def updates(self, event: Event, replay: bool = False) -> list[Any]:
        data = event.data
        if event.type == "queued":
            prompt = data.get("prompt") or f"semcoder repair {data.get('target', '')} (from {data.get('origin')})"
            return [update_user_message_text(prompt)] if replay or data.get("origin") != "acp" else []
        if event.type == "started":
            self._current = "execute"
            return self._plan()
        if event.type == "node":
            return self._node(event, data)
        if event.type == "done":
            self._current = ""
            return [*self._close_pending(f"not tested: the run ended ({data.get('status')})"), *self._plan(),
                    update_agent_message_text(summary(data))]
        return []

    def _node(self, event: Event, data: dict[str, Any]) -> list[Any]:
        node, detail, call_id = data.get("node", ""), data.get("detail") or {}, f"{self._run_id}-{event.id}"
        self._done_steps.add(node)
        self._current = {"execute": "trace", "trace": "reason" if self._has("reason") else "patch",
                         "reason": "patch", "patch": "execute"}.get(node, "")
        out: list[Any] = []
        if node == "execute":
            tested = data.get("tested") or []
            for summary_ in tested:
                if (pending := self._pending.pop(summary_.get("origin", ""), None)) is not None:
                    out.append(update_tool_call(pending, status="failed" if _rejected(summary_) else "completed",
                                                raw_output=summary_))
            original = [t for t in tested if t.get("origin") == "original"]
            title = "Run the tests on the original code" if original else f"Test {len(tested)} candidate(s)"
            lines = [_tested_line(t) for t in tested] or ["nothing to test"]
            out.append(start_tool_call(call_id, title, kind="execute", status="completed",
                                       content=[tool_content(text_block("\n".join(lines)))], raw_output=tested))
        elif node == "trace":
            out.append(self._trace_call(call_id, data, detail))
        elif node == "reason":
            out += [update_agent_thought_text(answer) for answer in detail.get("answers") or [] if answer.strip()]
        elif node == "patch":
            for index, candidate in enumerate(detail.get("candidates") or []):
                candidate_id = f"{call_id}-{index}"
                self._pending[candidate["origin"]] = candidate_id
                out.append(start_tool_call(
                    candidate_id, f"Candidate patch: {candidate['origin']}", kind="edit", status="pending",
                    content=self._candidate(candidate),
                    locations=[ToolCallLocation(path=str(self._root / path)) for path in candidate["files"]],
                    raw_input={"origin": candidate["origin"], "files": candidate["files"]}))
        return [*out, *self._plan()]

    def _candidate(self, candidate: dict[str, Any]) -> list[Any]:
        texts = candidate.get("texts")
        if texts and self._originals is not None and all(path in self._originals for path in texts):
            return [tool_diff_content(str(self._root / path), new_text=text, old_text=self._originals[path])
                    for path, text in sorted(texts.items())]
        return [tool_content(text_block(f"```diff\n{candidate['diff']}```"))]

    def _trace_call(self, call_id: str, data: dict[str, Any], detail: dict[str, Any]) -> Any:
        test = detail.get("test") or data.get("test", "")
        parts = [f"Failing test: {test}"]
        if detail.get("call"):
            parts.append(f"Failing call: {detail['call']}" + (f"  (expected {detail['expected']})"
                                                               if detail.get("expected") else ""))
        if detail.get("test_block"):
            parts.append(detail["test_block"].rstrip())
        if detail.get("trace"):
            parts.append("Execution trace:\n" + detail["trace"].rstrip())
        suspects = detail.get("suspects") or data.get("top") or []
        if suspects:
            parts.append("Suspects: " + ", ".join(f"{s['file']}:{s['line']} ({s['score']:.2f})" for s in suspects))
        locations = [ToolCallLocation(path=str(self._root / s["file"]), line=s["line"]) for s in suspects[:3]]
        return start_tool_call(call_id, f"Trace {test}", kind="read", status="completed",
                               content=[tool_content(text_block("\n\n".join(parts)))], locations=locations,
                               raw_output={"focus": data.get("focus"), **detail})

    def _close_pending(self, why: str) -> list[Any]:
        closed = [update_tool_call(call_id, status="failed", raw_output={"why": why})
                  for call_id in self._pending.values()]
        self._pending.clear()
        return closed

    def _has(self, node: str) -> bool:
        return any(step == node for step, _ in self._steps)

    def _plan(self) -> list[Any]:
        """The plan, when it changed since it was last sent (ACP: each plan update replaces the whole plan)."""
        def status(node: str) -> str:
            if node == self._current:
                return "in_progress"
            return "completed" if node in self._done_steps else "pending"

        entries = [(text, status(node)) for node, text in self._steps]
        if entries == self._shown_plan:
            return []
        self._shown_plan = entries
        return [update_plan([plan_entry(text, status=state) for text, state in entries])]  # type: ignore[arg-type]


def _rejected(summary_: dict[str, Any]) -> bool:
    return bool(summary_.get("problem") or summary_.get("tampered"))


def _tested_line(tested: dict[str, Any]) -> str:
    line = f"{tested.get('origin')}: {tested.get('passed', 0)}/{tested.get('total', 0)} passed"
    if tested.get("regressions"):
        line += f", {tested['regressions']} regression(s)"
    if tested.get("confirmed"):
        line += f"; confirmed: {tested['confirmed']}"
    if tested.get("problem"):
        line += f"; {tested['problem']}"
    return line


def summary(done: dict[str, Any]) -> str:
    status = done.get("status", "?")
    counts = f"{done.get('tests_passed', 0)}/{done.get('tests_total', 0)} tests pass" if done.get("tests_total") \
        else "no tests ran"
    reason = done.get("stop_reason") or ""
    return f"{status}: {counts} after {done.get('iterations', 0)} iteration(s)" + (f". {reason}" if reason else "")
