"""What the API speaks: request and response bodies (these models are the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.persistence import Origin, RunStatus
from agent.repair_settings import RepairSettings, RunSetup, refused

MODEL_BACKENDS = ("openai", "vllm", "transformers")


class RepairRequest(RepairSettings):
    """A function-level task (`code` + `tests`) or a project-level one (`project_path` or `project_archive`), and
    the settings of its repair: the same fields, defaults, checks and messages as `semcoder repair`'s flags
    (agent/repair_settings.py)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"code": "def add(a, b):\n    return a - b\n",
                      "tests": "from solution import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
                      "model": "none"}]})

    code: str | None = Field(None, max_length=1_000_000, description="Function-level: the code under repair; "
                             "the tests import it as module `solution`.")
    tests: str | None = Field(None, max_length=1_000_000, description="Function-level: pytest tests "
                              "(`from solution import f`).")
    project_path: str | None = Field(None, max_length=4096, description="Project-level: a directory on the server, "
                                     "under one of its allowed roots.")
    project_archive: str | None = Field(None, description="Project-level: a base64-encoded .tar.gz of the project "
                                        "(regular files and directories only).")

    @model_validator(mode="after")
    def _one_task(self) -> RepairRequest:
        given = [name for name in ("code", "project_path", "project_archive") if getattr(self, name) is not None]
        if len(given) != 1:
            raise refused("give exactly one of: code (with tests), project_path, project_archive")
        if (self.code is None) != (self.tests is None):
            raise refused("a function-level task needs both code and tests")
        return self


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
    model: str = Field(description="The model proposing patches (BACKEND:NAME, as `--model` takes it), or 'none' "
                       "when only the mutation patcher runs.")
    diff: str = Field(description="Unified diff from the original to the best version so far ('' if none).")
    setup: RunSetup = Field(description="The environment and test selection the run uses (as `semcoder repair "
                            "--json` reports them).")
    isolation: dict[str, Any] = Field(description="The sandbox the tests run in, as `semcoder repair --json` "
                                      "reports it: level, backend, python (the executable), python_version, "
                                      "missing, ... ({} until the run starts).")
    origin: Origin = Field(description="Where the run was started: cli (`semcoder repair`), http (this API), acp "
                           "(an editor) or mcp (an agent's tool call). Every front end sees every run.")
    events_url: str


class RepairList(BaseModel):
    repairs: list[Repair]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    replica: str = Field(description="This server process's id among the replicas sharing the database (the owner of "
                         "the runs it drives).")
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
    detail: str = Field(description="What was wrong, in words: for a setting, the message `semcoder repair` prints.")
    errors: list[dict[str, Any]] | None = Field(None, description="An invalid body (422): each validation error "
                                                "(`loc`, `msg`, `type`); `detail` joins them.")
