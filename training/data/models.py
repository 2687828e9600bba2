"""The pipeline's boundary types: candidate programs, their verified examples, output records."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OriginKind = Literal["corpus", "generator", "teacher"]
MonologueSource = Literal["trace", "teacher"]


class Origin(BaseModel):
    """Where a program came from: a corpus function, the random generator, or a teacher's problem."""

    model_config = ConfigDict(frozen=True)

    kind: OriginKind
    ref: str = Field(description="corpus: 'path::function'; generator: 'seed N'; teacher: the seed it started from.")


class Example(BaseModel):
    """One verified call: the argument list as a literal, the output's repr and the lines it ran."""

    model_config = ConfigDict(frozen=True)

    input: str
    output: str
    lines: tuple[int, ...] = ()


class Program(BaseModel):
    """A candidate: self-contained source with one entry function, what it should do, and its inputs."""

    code: str
    entry: str
    description: str = Field("", description="Natural-language problem statement ('' when there is none).")
    origin: Origin
    inputs: list[str] = Field(default_factory=list, description="Candidate argument lists (literals).")
    examples: list[Example] = Field(default_factory=list, description="Verified (input, output) pairs.")
    param_types: list[str] = Field(default_factory=list, description="Generator-known types per parameter.")

    @property
    def key(self) -> str:
        return hashlib.sha1(self.code.encode()).hexdigest()[:16]


class RecordMeta(BaseModel):
    """What a released record cannot say about itself; written to a sidecar line aligned with the record."""

    program: str = Field(description="The program's key (sha1 of its code).")
    origin: Origin
    task: Literal["nl2code", "forward", "backward", "refine"]
    monologue: MonologueSource | None = Field(None, description="trace: written from the real trace; teacher: sampled and verified.")
    bug: str | None = Field(None, description="PyX-R: the injected mutation.")
    steps_checked: int | None = Field(None, description="Monologue claims checked against the real trace (step_check).")
    steps_agreeing: int | None = Field(None, description="Of those, the ones the trace agrees with (all, when kept).")
