"""Resumable checkpoints (torch.distributed.checkpoint, sharded when FSDP is on) and the final HF export.

A checkpoint directory `checkpoint-<step>/` holds `state/` (model and optimizer, each process writing its own
shards) and `trainer_state.json`, written last: a directory without it is an interrupted save and is ignored.
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from pydantic import BaseModel
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from training.sft._runtime import Runtime

STATE_FILE = "trainer_state.json"


class TrainerState(BaseModel):
    """What, beside the weights and optimizer, a resumed run needs to continue exactly."""

    step: int
    total_steps: int
    history: list[dict[str, Any]]


@contextlib.contextmanager
def _quiet_single_process() -> Iterator[None]:
    # DCP warns on every call without a process group, though no_dist already says that is the intent.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    found = [p for p in output_dir.glob("checkpoint-*") if (p / STATE_FILE).exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def resolve_resume(output_dir: Path, resume_from: str | None) -> Path | None:
    if resume_from is None:
        return None
    if resume_from == "latest":
        found = checkpoint_dirs(output_dir)
        return found[-1] if found else None
    path = Path(resume_from)
    if not (path / STATE_FILE).exists():
        raise FileNotFoundError(
            f"resume_from={resume_from}: no {STATE_FILE} there (not a complete checkpoint)"
        )
    return path


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainerState,
    runtime: Runtime,
) -> None:
    model_state, optim_state = get_state_dict(model, optimizer)
    with _quiet_single_process():
        dcp.save(
            {"model": model_state, "optim": optim_state},
            checkpoint_id=str(path / "state"),
            no_dist=not runtime.distributed,
        )
    runtime.barrier()
    if runtime.is_main:
        (path / STATE_FILE).write_text(state.model_dump_json(), encoding="utf-8")
    runtime.barrier()


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, runtime: Runtime
) -> TrainerState:
    """Loads shards written by any number of processes (DCP reshards), e.g. a 2-process run into one."""
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optim": optim_state}
    with _quiet_single_process():
        dcp.load(state, checkpoint_id=str(path / "state"), no_dist=not runtime.distributed)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return TrainerState.model_validate_json((path / STATE_FILE).read_text(encoding="utf-8"))


def prune_checkpoints(output_dir: Path, keep: int) -> None:
    for old in checkpoint_dirs(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def export_hf(model: Any, tokenizer: Any, path: Path, dtype: str, runtime: Runtime) -> None:
    """A consolidated Hugging Face checkpoint (safetensors + config + tokenizer) that vLLM loads as is."""
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if not runtime.is_main:
        runtime.barrier()
        return
    target = getattr(torch, dtype)
    weights = {name: tensor.detach().to("cpu", target).contiguous() for name, tensor in full.items()}
    model.save_pretrained(path, state_dict=weights)
    # save_pretrained records the in-memory (fp32) dtype; loaders and vLLM should see the saved one.
    config = copy.deepcopy(model.config)
    config.dtype = target
    config.save_pretrained(path)
    tokenizer.save_pretrained(path)
    runtime.barrier()
