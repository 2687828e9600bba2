"""`semcoder train sft|pretrain --config FILE [--set key=value ...]`: one training job from a typed config.

Under torchrun (`torchrun --nproc_per_node N -m training.train_cli sft --config ...`) each process runs the
same command and the job shards itself with FSDP.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from training.sft import (
    PretrainConfig,
    SFTConfig,
    TrainResult,
    load_config,
    run_pretrain,
    run_sft,
    setup_runtime,
    shutdown,
)
from training.sft._plot import plot_loss

_config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML or JSON file (see training/configs/).",
)
_set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable)."
)


@click.group("train")
def train_group() -> None:
    """Train models: causal-LM pretraining on Python source, SFT on PyX / PyX-R."""


def _report(result: TrainResult, is_main: bool) -> None:
    if not is_main:
        return
    summary = result.summary
    mfu = f", MFU {summary['mfu']:.1%}" if summary.get("mfu") is not None else ""
    click.echo(
        f"done: {result.steps} steps, final loss {summary['final_loss']:.4f}, "
        f"{summary['tokens_per_s']:,.0f} tokens/s{mfu}; checkpoint {result.final_dir}"
    )


@train_group.command("sft")
@_config_option
@_set_option
def sft_command(config_path: Path, overrides: tuple[str, ...]) -> None:
    """Fine-tune on PyX / PyX-R records (loss on the response only)."""
    config = load_config(SFTConfig, config_path, overrides)
    runtime = setup_runtime(config)
    try:
        _report(run_sft(config, runtime), runtime.is_main)
    finally:
        shutdown(runtime)


@train_group.command("pretrain")
@_config_option
@_set_option
def pretrain_command(config_path: Path, overrides: tuple[str, ...]) -> None:
    """Causal-LM training on Python source files."""
    config = load_config(PretrainConfig, config_path, overrides)
    runtime = setup_runtime(config)
    try:
        _report(run_pretrain(config, runtime), runtime.is_main)
    finally:
        shutdown(runtime)


@train_group.command("plot")
@click.argument("metrics", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
def plot_command(metrics: Path, image: Path) -> None:
    """Draw a loss curve from a run's metrics.jsonl (e.g. one that came back from a GPU machine)."""
    history = [json.loads(line) for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not history:
        raise click.ClickException(f"{metrics}: no metrics")
    if plot_loss(history, image, title=metrics.parent.name) is None:
        raise click.ClickException("matplotlib is not installed")
    click.echo(f"wrote {image}")


if __name__ == "__main__":
    train_group()
