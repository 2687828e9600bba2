"""FSDP under torchrun: two gloo processes on CPU train exactly like one process with accumulation.

The same command a GPU cluster runs (`torchrun --nproc_per_node N -m training.train_cli sft`), FSDP2 sharding
parameters, gradients and optimizer state; only the backend differs (gloo here, NCCL on GPUs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import sft_settings
from safetensors.torch import load_file

from training.sft import SFTConfig, run_sft

pytestmark = pytest.mark.slow


def _settings(model: Path, out: Path, pyx: Path, pyxr: Path, **extra: object) -> dict[str, object]:
    return sft_settings(
        model, out, pyx, pyxr, packing=True, pack_length=512, micro_batch_size=1, max_steps=4, save_steps=2,
        save_total_limit=3, save_dtype="float32", gradient_checkpointing=True, **extra,
    )


def _torchrun(config_file: Path, processes: int) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
        "-m", "training.train_cli", "sft", "--config", str(config_file),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, check=False)


def _losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_two_gloo_processes_match_one_process(
    tiny_checkpoint: Path, pyx_file: Path, pyxr_file: Path, tmp_path: Path
) -> None:
    sharded_out = tmp_path / "fsdp2"
    config_file = tmp_path / "fsdp.json"
    config_file.write_text(json.dumps(_settings(tiny_checkpoint, sharded_out, pyx_file, pyxr_file, distributed="auto")))
    finished = _torchrun(config_file, processes=2)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "done: 4 steps" in finished.stdout

    single = run_sft(SFTConfig.model_validate(
        _settings(tiny_checkpoint, tmp_path / "single", pyx_file, pyxr_file, gradient_accumulation_steps=2)
    ))

    assert _losses(sharded_out) == pytest.approx([m["loss"] for m in single.history], rel=1e-4)
    sharded, alone = load_file(sharded_out / "final" / "model.safetensors"), load_file(single.final_dir / "model.safetensors")
    assert sharded.keys() == alone.keys()
    for name in alone:
        torch.testing.assert_close(sharded[name], alone[name], rtol=1e-3, atol=1e-4)

    # Each process wrote its own shard; one process can resume from them (DCP reshards on load).
    shards = sorted(p.name for p in (sharded_out / "checkpoint-2" / "state").glob("*.distcp"))
    assert len(shards) == 2, shards
    resumed = run_sft(SFTConfig.model_validate(_settings(
        tiny_checkpoint, tmp_path / "resumed", pyx_file, pyxr_file, gradient_accumulation_steps=2,
        resume_from=str(sharded_out / "checkpoint-2"),
    )))
    assert [m["loss"] for m in resumed.history[2:]] == pytest.approx(_losses(sharded_out)[2:], rel=1e-4)
