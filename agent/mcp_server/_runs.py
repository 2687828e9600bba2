"""The `repair` tool and the run resources: the repair loop as every front end runs it (agent/runs.py), on the one
run store, so a repair an agent asks for is listed by `semcoder runs`, an editor's session list and the HTTP API.

`repair` never writes a file: it answers the diff (the calling agent applies it, or not). Each step of the loop is
a progress notification. A cancelled call (notifications/cancelled, or the host going away) cancels the run, which
stops at its next step. Past runs are resources: `semcoder://runs` (the latest) and `semcoder://runs/{run_id}` (one
run: its outcome, diff and step log).
"""

from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

import sandbox
from agent import runs
from agent.api.intake import accept
from agent.api.schemas import RepairRequest
from agent.mcp_server._limits import capped
from agent.mcp_server._paths import allowed_path, project_of
from agent.mcp_server._settings import McpSettings
from agent.mcp_server._tools import PATH_RULE, PathArg, TestTimeout
from agent.models import ModelError
from agent.persistence import Event, RunStore
from agent.preflight import check_model
from agent.repair_settings import RepairSettings
from agent.state import FeedbackMode, Patcher
from agent.tasks import TaskError

_SETTINGS = RepairSettings.model_fields
RUN_URI = "semcoder://runs/{run_id}"
RUNS_LISTED = 50


class RepairResult(BaseModel):
    """How a repair run ended. The diff is the fix; nothing was written to the project."""

    run_id: str = Field(description=f"The run's id; its record is the resource {RUN_URI}.")
    status: str = Field(description="fixed: every selected test passes (confirmed by an independent re-run); "
                        "not_fixed: the budget ran out (the diff is the best version found, if any); cancelled; "
                        "error: the run could not go on (see stop_reason).")
    tests_passed: int
    tests_total: int
    iterations: int = Field(description="Patch steps taken.")
    candidates_tested: int = Field(description="Candidate patches whose tests ran.")
    diff: str = Field(description="Unified diff (a/ b/ paths relative to the project) from the original to the best "
                      "version; '' if none beat the original. Apply it yourself: the tool writes nothing.")
    stop_reason: str
    confirmation: str = Field("", description="How the fix was confirmed independently.")
    notes: list[str] = Field(default_factory=list, description="What the run or this answer left out.")


class RunTools:
    """`repair` and the run resources, bound to one server's settings and run store."""

    def __init__(self, settings: McpSettings, store: RunStore) -> None:
        self.settings = settings
        self.store = store

    async def repair(
        self,
        path: Annotated[PathArg, Field(description="The project directory (or one of its test files: then those "
                                       "tests are the target)." + PATH_RULE)],
        ctx: Context,
        tests: Annotated[list[str], Field(max_length=200, description="pytest node ids or paths to repair, "
                                          "relative to the project (default: the whole suite).")] = [],  # noqa: B006
        model: Annotated[str | None, Field(max_length=500, description=_SETTINGS["model"].description)] = None,
        patcher: Annotated[Patcher | None, Field(description=_SETTINGS["patcher"].description)] = None,
        feedback: Annotated[FeedbackMode | None, Field(description=_SETTINGS["feedback"].description)] = None,
        max_iterations: Annotated[int, Field(ge=1, le=50, description=_SETTINGS["max_iterations"].description)] = 8,
        mutants_per_step: Annotated[int, Field(ge=1, le=200, description=_SETTINGS["mutants_per_step"].description)
                                    ] = 12,
        test_timeout_s: TestTimeout = 5.0,
    ) -> RepairResult:
        """Repair a Python project's failing tests with semcoder's loop: run the tests in the sandbox, trace the
        failing test, rank suspects, reason about the bug (with a model) and test candidate patches until the tests
        pass or the budget runs out. Answers the best diff and how it fared; it never writes to the project (apply
        the diff yourself). Sends a progress notification per step. Takes seconds to minutes."""
        root, selection = self._target(path, tests)
        given = {"project_path": str(root), "test_timeout_s": test_timeout_s, "max_iterations": max_iterations,
                 "mutants_per_step": mutants_per_step, "pytest_args": selection, "model": model, "patcher": patcher, "feedback": feedback}
        try:
            request = RepairRequest(**{key: value for key, value in given.items() if value not in (None, [])})
            accepted = accept(request, self.settings)
            await anyio.to_thread.run_sync(check_model, accepted.task, accepted.config)
        except (TaskError, ModelError, ValueError) as exc:
            raise ToolError(str(exc)) from None
        run_id = runs.start(self.store, accepted.task, accepted.config, str(root), "mcp", accepted.environment)
        try:
            driven = await self._follow(run_id, accepted.config.python, ctx)
        except anyio.get_cancelled_exc_class():
            runs.cancel(self.store, run_id)  # the call was cancelled: the run stops at its next step
            raise
        except sandbox.SandboxError as exc:
            raise ToolError(f"sandbox failure (infrastructure, not the code under test): {exc}") from None
        except ModelError as exc:
            raise ToolError(f"the model failed (run {run_id} can be resumed: semcoder repair --resume {run_id}): "
                            f"{exc}") from None
        row = self.store.get(run_id)
        assert row is not None
        diff, note = capped(row.diff, self.settings.max_output_chars, "the diff")
        outcome = driven.outcome or {}
        return RepairResult(run_id=run_id, status=row.status, tests_passed=row.tests_passed,
                            tests_total=row.tests_total, iterations=row.iterations,
                            candidates_tested=row.executions, diff=diff, stop_reason=row.stop_reason,
                            confirmation=outcome.get("confirmation", ""),
                            notes=[*accepted.task.notes, *([note] if note else [])])

    def _target(self, path: str, tests: list[str]) -> tuple[Path, list[str]]:
        resolved = allowed_path(path, self.settings.allowed_roots)
        if resolved.is_file():
            root = project_of(resolved, self.settings.allowed_roots)
            return root, [resolved.relative_to(root).as_posix(), *tests]
        return resolved, list(tests)

    async def _follow(self, run_id: str, python: str | None, ctx: Context) -> runs.Driven:
        """Drives the run on a thread (with the server's sandbox backend) and reports each event as progress."""
        steps = itertools.count(1)

        def drive(report: Callable[[Event], None]) -> runs.Driven:
            with sandbox.Pool(workers=self.settings.sandbox_workers, backend=self.settings.sandbox_backend,
                              python=python) as pool:
                return runs.drive(self.store, run_id, pool=pool, on_event=report)

        async def progress(event: Event) -> None:
            await ctx.report_progress(next(steps), None, progress_message(event))

        return await runs.follow(drive, progress)

    # resources

    def runs_list(self) -> str:
        """The latest runs, from every front end (newest first)."""
        rows = self.store.list(RUNS_LISTED)
        return json.dumps([{**row.model_dump(include={"run_id", "status", "origin", "kind", "target", "iterations",
                                                       "tests_passed", "tests_total", "stop_reason"}),
                            "created": row.created, "uri": RUN_URI.format(run_id=row.run_id)} for row in rows])

    def run_record(self, run_id: str) -> str:
        """One run: its outcome, diff and the log of its steps."""
        row = self.store.get(run_id)
        if row is None:
            raise ResourceError(f"no run {run_id!r} in the run store (see semcoder://runs)")
        steps: list[dict[str, Any]] = []
        after = 0
        while events := self.store.events_after(run_id, after):
            steps += [{"id": e.id, "type": e.type, **_step(e)} for e in events]
            after = events[-1].id
        record = {**row.model_dump(mode="json"), "steps": steps}
        text = json.dumps(record)
        while len(text) > self.settings.max_output_chars and len(record["steps"]) > 1:  # still JSON when cut
            kept = len(record["steps"]) // 2
            record = {**record, "steps": steps[-kept:], "notes": [
                f"the first {len(steps) - kept} of {len(steps)} steps are left out (the answer's cap is "
                f"{self.settings.max_output_chars} characters)"]}
            text = json.dumps(record)
        return text


def _step(event: Event) -> dict[str, Any]:
    data = event.data
    if event.type != "node":
        return {key: data[key] for key in ("status", "stop_reason", "resumed", "prompt") if key in data}
    kept = {key: data[key] for key in ("node", "iteration", "best", "tested", "focus", "candidates") if key in data}
    detail = data.get("detail") or {}
    if detail.get("call"):
        kept["call"] = detail["call"]
    return kept


def progress_message(event: Event) -> str:
    data = event.data
    if event.type == "started":
        return "started" + (" (resumed)" if data.get("resumed") else "")
    if event.type == "done":
        return f"{data.get('status')}: {data.get('tests_passed', 0)}/{data.get('tests_total', 0)} tests pass"
    node, best = data.get("node", ""), data.get("best") or {}
    counts = f" (best so far {best['passed']}/{best['total']})" if best else ""
    if node == "execute":
        tested = data.get("tested") or []
        what = "ran the original's tests" if any(t.get("origin") == "original" for t in tested) \
            else f"tested {len(tested)} candidate(s)"
    elif node == "trace":
        what = f"traced {data.get('test', 'the failing test')}; suspect {data.get('focus', '?')}"
    elif node == "reason":
        what = f"the model answered ({data.get('samples', 0)} sample(s))"
    elif node == "patch":
        what = f"{len(data.get('candidates') or [])} candidate patch(es)"
    else:
        what = node
    return f"iteration {data.get('iteration', 0)}: {what}{counts}"


def register_runs(server: MCPServer, tools: RunTools) -> None:
    """Adds `repair` and the run resources to `server`."""
    server.add_tool(tools.repair, name="repair", title="Repair failing tests",
                    description=inspect.cleandoc(tools.repair.__doc__ or ""), structured_output=True,
                    # runs code in the sandbox and records a run; never touches the caller's files
                    annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                                                open_world_hint=False))
    server.resource("semcoder://runs", name="runs", title="Repair runs", mime_type="application/json",
                    description="The latest repair runs from every front end (CLI, HTTP, ACP, MCP), newest first."
                    )(tools.runs_list)
    server.resource(RUN_URI, name="run", title="A repair run", mime_type="application/json",
                    description="One run: status, tests, the diff, and the log of its steps.")(tools.run_record)
