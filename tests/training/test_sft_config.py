"""The shipped configs validate; overrides and bad input give clear results."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from training.sft import PretrainConfig, SFTConfig, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    kind = PretrainConfig if "pretrain" in path.name else SFTConfig
    config = load_config(kind, path)
    assert config.output_dir.parts[0] == "runs"


def test_paper_recipe_keeps_global_batch_512() -> None:
    config = load_config(SFTConfig, CONFIGS / "deepseek-coder-6.7b-pyx.yaml")
    assert 8 * config.micro_batch_size * config.gradient_accumulation_steps == 512
    assert (config.learning_rate, config.max_length, config.packing) == (5e-5, 1216, False)


def test_overrides_reach_nested_fields(tmp_path: Path) -> None:
    config = load_config(
        PretrainConfig, CONFIGS / "small-pretrain.yaml", ["init.hidden_size=64", "max_steps=3", "device=cpu"]
    )
    assert (config.init.hidden_size, config.max_steps, config.device) == (64, 3, "cpu")


def test_unknown_field_and_bad_packing_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="learning_rat"):
        SFTConfig.model_validate({"model": "m", "output_dir": "o", "data": [{"path": "x"}], "learning_rat": 1})
    with pytest.raises(ValidationError, match="pack_length"):
        SFTConfig.model_validate(
            {"model": "m", "output_dir": "o", "data": [{"path": "x"}], "packing": True, "pack_length": 64}
        )
