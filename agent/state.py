"""The graph's state: the run's input (its task's hash, and config) plus everything the loop has learned.

Values are plain JSON-able data (pydantic models are dumped at node boundaries) so that any
checkpointer (SQLite, Postgres) can store and reload a run without a type allowlist. Counters and
the node history use reducers: a node returns increments, never totals.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, Field

from agent.edits import SHORT_FILE_LINES, EditSetting
from agent.models._dialect import DIALECT_HELP, Dialect, Resolved, resolve_dialect
from agent.tasks import TestReport

Patcher = Literal["model", "mutation", "both"]
FeedbackMode = Literal["semcoder", "trace", "blocks"]
Outcome = Literal["running", "fixed", "not_fixed", "error"]


class RunConfig(BaseModel):
    """How one repair run behaves. Everything a resumed run needs to rebuild its model and sandbox."""

    model: str = Field("none", description="'none' or a model spec BACKEND:NAME, e.g. openai:semcoder_s_1030, "
                       "transformers:/path/to/checkpoint (other settings from SEMCODER_* variables).")
    patcher: Patcher = Field("mutation", description="Where patches come from: the model, the mutation engine, or both.")
    feedback: FeedbackMode = Field("semcoder", description="What the model sees of the failure: the paper's failed "
                                   "test only, the real trace of it, or LDB-style block states.")
    max_iterations: int = Field(8, ge=0, description="Patch steps (each tests a batch of candidates).")
    max_tokens: int = Field(200_000, ge=0, description="Model tokens (prompt + completion) over the whole run.")
    max_time_s: float = Field(600.0, gt=0, description="Wall time of the run in seconds, summed over its nodes.")
    samples: int = Field(4, ge=1, description="Completions sampled per model step (n), each a candidate patch.")
    mutants_per_step: int = Field(12, ge=1, description="Mutants tested per mutation step.")
    temperature: float = Field(0.6, ge=0, description="Model sampling temperature (the paper: 0.6 HumanEval, 0.8 MBPP).")
    top_p: float = Field(0.95, gt=0, le=1, description="Model nucleus sampling mass.")
    max_new_tokens: int = Field(512, ge=1, description="Most tokens per completion.")
    test_timeout_s: float = Field(5.0, gt=0, description="Per-test time limit in seconds in the sandbox (catches "
                                  "infinite loops); a slow test gets 3x its time in the original's run, plus 1 s.")
    workers: int | None = Field(None, ge=1, description="Sandbox processes run in parallel (None: CPU count).")
    python: str | None = Field(None, description="The project's interpreter or venv its tests run with. Not given: "
                               "detected ($VIRTUAL_ENV for the command line, else .venv/, venv/, env/ at the project "
                               "root, poetry's environment), else semcoder's own (agent/environment.py).")
    allow_suspicious: bool = Field(False, description="Test candidates whose diff adds what a bug fix does not need "
                                   "(atexit, gc, ctypes, pytest internals, os._exit, ...); rejected by default.")
    edit_format: EditSetting = Field("auto", description="How the model's answer edits the code: the whole function, "
                                     "SEARCH/REPLACE blocks or a unified diff; auto: the whole function for SemCoder "
                                     f"and short files, blocks for a chat model on a file over {SHORT_FILE_LINES} lines. A block or "
                                     "hunk that does not apply falls back to the answer's whole function, if it has "
                                     "one; else the next prompt of a chat model says what failed.")
    dialect: Dialect = Field("auto", description=DIALECT_HELP)
    system_prompt: str | None = Field(None, description="The chat dialect's system message, in place of the built-in "
                                      "one (a project's AGENTS.md is still appended to it).")
    show_trace: bool = Field(False, description="Trace the failing call for the people watching the run (an editor) "
                             "even where the model is not shown a trace: one traced run per trace step.")

    @property
    def prompt_dialect(self) -> Resolved:
        """The dialect the model is prompted in: `auto` resolved by the model's name or path."""
        return resolve_dialect(self.dialect, self.model)

    @property
    def uses_model(self) -> bool:
        return self.model != "none" and self.patcher in ("model", "both")

    @property
    def uses_mutation(self) -> bool:
        return self.patcher in ("mutation", "both") or self.model == "none"


class Attempt(BaseModel):
    """A version of the editable files and how it fared on the tests."""

    files: dict[str, str] = Field(description="The editable files this attempt changes, path -> text (the whole "
                                  "workspace is task.files + these; the original changes none).")
    origin: str = Field(description="'original', 'generated', 'model' or the mutation applied.")
    iteration: int = 0
    report: TestReport = Field(default_factory=TestReport)
    regressions: int = Field(0, description="Tests the original passed that this attempt fails.")
    fixed: int = Field(0, description="Tests the original failed that this attempt passes.")
    confirmation: str = Field("", description="How an all-passing attempt was confirmed by an independent re-run.")
    missing_names: int = Field(0, description="Failing tests that fail because the code lacks a name they use.")
    recovered: int = Field(0, description="Failures the user did not ask about (left alone) that now pass.")

    @property
    def passed(self) -> int:
        return self.report.passed

    @property
    def total(self) -> int:
        return self.report.total

    def rank(self) -> tuple[int, int, int, int, int]:
        # Net tests gained over the original, then fewer regressions: the same order as tests passed on a full
        # run, and comparable between a full run and a run of the failing tests plus their regression set. Then
        # progress that passes no asked-for test yet: failures left alone that now pass (a cascade of the same
        # bug), then names the tests need, added (the failure moves on to the behaviour).
        return (self.fixed - self.regressions, -self.regressions, self.passed, self.recovered, -self.missing_names)


class Candidate(BaseModel):
    """A patch waiting to be tested."""

    files: dict[str, str]
    origin: str


class Focus(BaseModel):
    """The failing test the next patch targets, and what the model is shown about it."""

    test_id: str
    file: str = Field(description="The editable file the patch goes into.")
    function: str | None = None
    whole_file: bool = Field(False, description="Show and replace the whole file (function-level tasks).")
    adds: bool = Field(False, description="`function` is a name the file lacks and a test uses: the patch adds it.")
    also: list[str] = Field(default_factory=list, description="The next suspects (file::function), shown with the "
                            "focus: a fix that spans functions or files is reached in one step.")
    test_block: str = Field("", description="The Failed Test block of the refine prompt.")
    trace: str = Field("", description="The real execution of the failed test, rendered for the feedback mode.")
    shown_trace: str = Field("", description="Where the model is shown no trace and the run shows one (show_trace): "
                             "the real execution in the `trace` rendering, for the people watching.")
    call: str | None = Field(None, description="The failing call, e.g. f(1, 2), where it could be derived.")
    expected: str | None = None


class RepairState(TypedDict, total=False):
    run_id: str
    task_sha256: str  # the task's snapshot, stored once beside the checkpoints (agent/persistence.load_task)
    generate_first: bool  # a function-level task with no code yet: the model writes it first
    config: dict[str, Any]
    iteration: int
    best: dict[str, Any] | None
    baseline_passing: list[str]
    baseline_failing: list[str]
    baseline_ignored: list[str]  # tests that failed before and are not what the user asked to repair
    baseline_durations: dict[str, float]
    candidates: list[dict[str, Any]]
    focus: dict[str, Any] | None
    suspects: list[dict[str, Any]]
    completions: list[dict[str, str]]
    status: Outcome
    stop_reason: str
    tried: Annotated[list[str], operator.add]
    tokens_used: Annotated[int, operator.add]
    elapsed_s: Annotated[float, operator.add]
    executions: Annotated[int, operator.add]
    history: Annotated[list[dict[str, Any]], operator.add]
    fruitless: Annotated[list[str], operator.add]  # file::function foci whose model patches changed nothing
