"""Resume: a run that crashes after a checkpoint and is restarted ends where an uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import sft_settings
from safetensors.torch import load_file

from training.sft import SFTConfig, Trainer, run_sft
from training.sft._checkpoint import resolve_resume


def _config(model: Path, out: Path, pyx: Path, **extra: object) -> SFTConfig:
    settings = sft_settings(model, out, pyx, max_steps=4, save_steps=2, save_dtype="float32", **extra)
    return SFTConfig.model_validate(settings)


def _weights(result_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(result_dir / "final" / "model.safetensors")


def test_resume_after_crash_matches_uninterrupted_run(
    tiny_checkpoint: Path, pyx_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight = run_sft(_config(tiny_checkpoint, tmp_path / "straight", pyx_file))

    crashing = tmp_path / "crashing"
    real_step = Trainer._run_step

    def crash_at_third_step(self: Trainer, step: int) -> dict:
        if step == 2:
            raise RuntimeError("simulated crash")
        return real_step(self, step)

    monkeypatch.setattr(Trainer, "_run_step", crash_at_third_step)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_sft(_config(tiny_checkpoint, crashing, pyx_file))
    monkeypatch.undo()
    (crashing / "checkpoint-3").mkdir()  # an interrupted save: no trainer_state.json, must be ignored
    assert resolve_resume(crashing, "latest") == crashing / "checkpoint-2"

    resumed = run_sft(_config(tiny_checkpoint, crashing, pyx_file, resume_from="latest"))

    assert [m["step"] for m in resumed.history] == [1, 2, 3, 4]
    assert [m["loss"] for m in resumed.history] == pytest.approx([m["loss"] for m in straight.history], rel=1e-5)
    lines = (crashing / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4
    expected, got = _weights(tmp_path / "straight"), _weights(crashing)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=1e-5, atol=1e-6)


def test_resume_from_missing_checkpoint_is_a_clear_error(tiny_checkpoint: Path, pyx_file: Path, tmp_path: Path) -> None:
    config = _config(tiny_checkpoint, tmp_path / "run", pyx_file, resume_from=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="not a complete checkpoint"):
        run_sft(config)
