"""The task records every benchmark loader returns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ProgramTask(BaseModel):
    """A task checked by running test code after the solution (HumanEval, MBPP, HumanEvalFix)."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    prompt: str = Field(description="Code prefixed to a sample's `completion` (empty for MBPP).")
    description: str = Field("", description="The natural-language task, where it is not in `prompt`.")
    entry_point: str = Field(description="The function the tests call; its returns must be plain values.")
    canonical_solution: str = Field(description="Reference completion (appended to `prompt`).")
    buggy_solution: str | None = Field(None, description="HumanEvalFix's buggy completion.")
    test: str = Field(description="Code run after the solution in the same namespace; raising means failing.")

    def program(self, completion: str) -> str:
        return self.prompt + completion


class DiffTask(BaseModel):
    """A task checked by differential testing against the canonical solution (HumanEval+, MBPP+)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    base_inputs: list[Any] = Field(description="Argument lists from the original benchmark.")
    plus_inputs: list[Any] = Field(description="Argument lists added by EvalPlus.")
    atol: float = Field(0.0, description="Absolute tolerance for float outputs (EvalPlus's `atol`).")

    def program(self, completion: str) -> str:
        return self.prompt + completion

    @property
    def inputs(self) -> list[Any]:
        return [*self.base_inputs, *self.plus_inputs]


class CruxTask(BaseModel):
    """A CRUXEval sample: a function `f`, one input and its output, as Python source text."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    code: str
    input: str
    output: str


Task = ProgramTask | DiffTask | CruxTask
