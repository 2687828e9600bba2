"""`semcoder eval --model`'s settings, apart from the run itself (evals/model_run.py): the CLI's options are derived
from these fields, and importing them must not import the model clients (`semcoder eval --samples` never needs them)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from agent.models._dialect import Dialect, Resolved, resolve_dialect
from agent.models._urls import MODEL_URL_HELP, ModelURLs
from agent.state import FeedbackMode, RunConfig


class ModelRunConfig(BaseModel):
    """One generate-and-refine run; every field is a CLI option."""

    benchmark: str
    model_url: ModelURLs = Field(description=MODEL_URL_HELP)
    model_name: str = Field(description="Model name as the server knows it.")
    out_dir: Path = Field(description="Where generations, rounds and the report go (resumable).")
    n: int = Field(1, ge=1, description="Samples per task.")
    temperature: float = Field(0.0, ge=0.0, description="Sampling temperature (0: greedy).")
    max_tokens: int = Field(512, ge=1, description="Most new tokens per generation and per refinement.")
    refine_rounds: int = Field(0, ge=0, le=5, description="SemCoder's protocol allows up to 5.")
    feedback: FeedbackMode = Field("semcoder", description="What the refine prompt shows of the failure.")
    limit: int | None = Field(None, ge=1, description="Only the first N tasks.")
    task_ids: tuple[str, ...] = Field((), description="Only these tasks (before --limit).")
    data: str | None = Field(None, description="Benchmark data source (default: the shipped copy).")
    refine_concurrency: int = Field(64, ge=1, description="Refinement prompts in flight at once.")
    dialect: Dialect = RunConfig.model_fields["dialect"]
    system_prompt: str | None = Field(None, description="The chat dialect's system message, in place of the "
                                      "built-in one of each task.")

    @property
    def prompt_dialect(self) -> Resolved:
        return resolve_dialect(self.dialect, self.model_name)
