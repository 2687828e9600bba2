"""Where the run executes: device, process group, FSDP2 sharding, precision.

One code path for every launch: a plain process, `torchrun --nproc_per_node N` (NCCL on GPUs, gloo on CPUs),
or a single process that asks for FSDP (a one-member process group, so the sharded path is exercised on one
GPU too).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from training.sft._config import TrainConfig


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int
    world_size: int
    fsdp: bool
    precision: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.precision == "bf16-autocast" and not self.fsdp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def all_reduce_sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return value

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def _pick_device(requested: str, local_rank: int) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but torch sees no GPU")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device(requested)


def setup_runtime(config: TrainConfig) -> Runtime:
    """Join the torchrun process group if launched by torchrun; start a one-member group for FSDP alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _pick_device(config.device, local_rank)
    fsdp = config.distributed == "fsdp" or (config.distributed == "auto" and world_size > 1)
    if world_size > 1 and config.distributed == "none":
        raise ValueError("launched with several processes but distributed='none'; use 'auto' or 'fsdp'")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if fsdp and not dist.is_initialized():
        if world_size > 1:
            dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        else:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Runtime(device, rank, world_size, fsdp, config.precision)


def shard_model(model: torch.nn.Module, runtime: Runtime) -> None:
    """FSDP2: each decoder layer its own unit (gathered just in time), the rest in the root unit."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy()
    if runtime.precision == "bf16-autocast":
        # bf16 compute on fp32 master weights, gradients reduced in fp32: autocast's numerics under sharding.
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for layer in model.model.layers:
        fully_shard(layer, mp_policy=policy)
    fully_shard(model, mp_policy=policy)


def gradient_sync(model: torch.nn.Module, runtime: Runtime, enabled: bool) -> None:
    """Skip the reduce-scatter on all but the last micro-batch of a step (FSDP2 accumulates locally)."""
    if runtime.fsdp:
        model.set_requires_gradient_sync(enabled)  # type: ignore[operator]


def shutdown(runtime: Runtime) -> None:
    if runtime.distributed:
        dist.destroy_process_group()


@contextlib.contextmanager
def main_process_first(runtime: Runtime) -> Iterator[None]:
    """Rank 0 does the work (building a model, tokenizing) before the others read its result."""
    if not runtime.is_main:
        runtime.barrier()
    yield
    if runtime.is_main:
        runtime.barrier()
