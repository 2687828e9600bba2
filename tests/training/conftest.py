"""Fixtures of the training tests: one tiny random-init Llama checkpoint and the sample PyX / PyX-R files."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.tiny_model import build_tiny_model

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-train-llama")).path


@pytest.fixture(scope="session")
def pyx_file() -> Path:
    return DATA / "pyx_sample.jsonl"


@pytest.fixture(scope="session")
def pyxr_file() -> Path:
    return DATA / "pyxr_sample.jsonl"


def sft_settings(model: Path, output_dir: Path, *data: Path, **overrides: object) -> dict[str, object]:
    """A config that a CPU runs in seconds: fp32, tiny batches, no plot unless asked."""
    settings: dict[str, object] = {
        "model": str(model),
        "output_dir": str(output_dir),
        "data": [{"path": str(p)} for p in data],
        "device": "cpu",
        "precision": "fp32",
        "distributed": "none",
        "max_length": 256,
        "micro_batch_size": 4,
        "learning_rate": 1e-2,
        "min_lr_ratio": 0.5,
        "warmup_steps": 1,
        "max_steps": 6,
        "epochs": 100,
        "plot": False,
    }
    settings.update(overrides)
    return settings
