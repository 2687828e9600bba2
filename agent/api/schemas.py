"""What the API speaks: request and response bodies (these models are the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.state import FeedbackMode, Patcher, RunConfig

RunStatus = Literal["queued", "running", "fixed", "not_fixed", "error", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"fixed", "not_fixed", "error", "cancelled"})
MODEL_BACKENDS = ("openai", "vllm", "transformers")


def _about(field: str) -> str | None:
    return RunConfig.model_fields[field].description


class RepairRequest(BaseModel):
    """A function-level task (`code` + `tests`) or a project-level one (`project_path` or `project_archive`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"code": "def add(a, b):\n    return a - b\n",
                      "tests": "from solution import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
                      "model": "none"}]})

    code: str | None = Field(None, max_length=1_000_000, description="Function-level: the code under repair; "
                             "the tests import it as module `solution`.")
    tests: str | None = Field(None, max_length=1_000_000, description="Function-level: pytest tests "
                              "(`from solution import f`).")
    entry_point: str | None = Field(None, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                    description="Function-level: the function under repair (default: the last "
                                    "top-level function of `code`).")
    problem: str = Field("", max_length=100_000, description="What the code should do, in words (shown to the model).")
    project_path: str | None = Field(None, max_length=4096, description="Project-level: a directory on the server, "
                                     "under one of its allowed roots.")
    project_archive: str | None = Field(None, description="Project-level: a base64-encoded .tar.gz of the project "
                                        "(regular files and directories only).")
    model: str = Field("none", max_length=500, pattern=r"^(none|(openai|vllm|transformers):.+)$",
                       description=_about("model"))
    patcher: Patcher | None = Field(None, description="Where patches come from (default: mutation without a "
                                    "model, both with one).")
    feedback: FeedbackMode = Field("semcoder", description=_about("feedback"))
    max_iterations: int = Field(8, ge=0, le=200, description=_about("max_iterations"))
    max_tokens: int = Field(200_000, ge=0, le=10_000_000, description=_about("max_tokens"))
    max_time_s: float = Field(600.0, gt=0, le=7200, description=_about("max_time_s"))
    samples: int = Field(4, ge=1, le=64, description=_about("samples"))
    mutants_per_step: int = Field(12, ge=1, le=200, description=_about("mutants_per_step"))
    temperature: float = Field(0.6, ge=0, le=2, description=_about("temperature"))
    max_new_tokens: int = Field(512, ge=1, le=32_768, description=_about("max_new_tokens"))
    test_timeout_s: float = Field(5.0, gt=0, le=120, description=_about("test_timeout_s"))
    allow_suspicious: bool = Field(False, description=_about("allow_suspicious"))

    @model_validator(mode="after")
    def _one_task(self) -> RepairRequest:
        given = [name for name in ("code", "project_path", "project_archive") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of: code (with tests), project_path, project_archive")
        if (self.code is None) != (self.tests is None):
            raise ValueError("a function-level task needs both code and tests")
        if self.entry_point is not None and self.code is None:
            raise ValueError("entry_point applies to function-level tasks (code + tests) only")
        if self.patcher in ("model", "both") and self.model == "none":
            raise ValueError(f"patcher {self.patcher!r} needs a model: set model to BACKEND:NAME")
        return self

    def run_config(self) -> RunConfig:
        fields = {name: getattr(self, name) for name in RunConfig.model_fields if name in type(self).model_fields}
        patcher = self.patcher or ("mutation" if self.model == "none" else "both")
        return RunConfig(**{**fields, "patcher": patcher})


class Repair(BaseModel):
    """A run as the API reports it."""

    id: str
    status: RunStatus
    kind: Literal["function", "project"]
    target: str = Field(description="What is being repaired (the project path, 'archive' or 'solution.py').")
    created: float = Field(description="Unix time the run was accepted.")
    updated: float
    iterations: int = Field(description="Patch steps taken so far.")
    executions: int = Field(description="Candidates whose tests ran so far.")
    tests_passed: int = Field(description="Tests the best version so far passes.")
    tests_total: int
    stop_reason: str = Field(description="Why the run ended (empty while it runs).")
    diff: str = Field(description="Unified diff from the original to the best version so far ('' if none).")
    events_url: str


class RepairList(BaseModel):
    repairs: list[Repair]


class Event(BaseModel):
    """One Server-Sent Event: `id` counts up from 1 per run; `type` is its SSE event name."""

    id: int
    type: Literal["queued", "started", "node", "done"]
    data: dict[str, Any]
    created: float


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    database: Literal["sqlite", "postgres"]
    queued: int
    running: int
    max_concurrent_runs: int


class ModelInfo(BaseModel):
    id: str = Field(description="The value to pass as `model` in POST /v1/repairs.")
    description: str
    available: bool = Field(description="Whether the server could reach it just now.")


class ModelList(BaseModel):
    models: list[ModelInfo]


class ErrorBody(BaseModel):
    detail: Any = Field(description="What was wrong, in words (or FastAPI's list of validation errors).")
