"""The training loop: token-weighted loss over the global batch, FSDP-aware, resumable, time-budgeted.

The loss of a step is the mean over every loss-carrying token of the global batch (all processes, all
micro-batches): each micro-batch's summed token loss is divided by the global count, known in advance from
the shared plan, so one process with accumulation and N processes compute the same gradient.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent.prompts import IGNORE_INDEX
from training.sft._checkpoint import (
    TrainerState,
    export_hf,
    load_checkpoint,
    prune_checkpoints,
    resolve_resume,
    save_checkpoint,
)
from training.sft._collate import Batch, MicroBatch, collate_packed, collate_padded, plan_epoch
from training.sft._config import TrainConfig
from training.sft._data import TokenSet
from training.sft._flops import matmul_parameters, mfu, step_flops
from training.sft._model import compile_model, load_model, pad_id
from training.sft._runtime import Runtime, gradient_sync
from training.sft._schedule import learning_rate, warmup_steps

# Steps left out of the steady-state throughput: compilation and allocator warm-up land in the first ones.
WARMUP_STEPS_EXCLUDED = 3


@dataclass
class TrainResult:
    final_dir: Path
    steps: int
    history: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    model: Any = field(default=None, repr=False)  # the trained module, still on its device
    config: TrainConfig | None = None


def steady_throughput(history: Sequence[dict[str, Any]], skip: int = WARMUP_STEPS_EXCLUDED) -> dict[str, Any]:
    """Tokens/s and MFU over the steps after the first `skip` of the run (or all, if that leaves none)."""
    steady = list(history[skip:]) or list(history)
    seconds = sum(m["step_time"] for m in steady)
    tokens = sum(m["real_tokens"] for m in steady)
    padded = sum(m["row_tokens"] for m in steady)
    summary: dict[str, Any] = {
        "steps_timed": len(steady),
        "tokens_per_s": tokens / seconds if seconds else 0.0,
        "padding_fraction": 1 - tokens / padded if padded else 0.0,
    }
    mfus = [m["mfu"] * m["step_time"] for m in steady if m.get("mfu") is not None]
    summary["mfu"] = sum(mfus) / seconds if mfus and seconds else None
    return summary


class Trainer:
    """Train `config.model` on `data`; `model` may be passed in to continue a model already in memory."""

    def __init__(
        self, config: TrainConfig, data: TokenSet, tokenizer: Any, runtime: Runtime, model: Any = None
    ) -> None:
        self.config, self.data, self.tokenizer, self.runtime = config, data, tokenizer, runtime
        self.model = model if model is not None else load_model(config, runtime)
        self.model.train()  # from_pretrained returns eval mode, where activation checkpointing is off
        if config.compile:
            compile_model(self.model)
        self.optimizer = self._optimizer()
        self.targets = self._targets_per_sample()
        self.micro_per_step = runtime.world_size * config.gradient_accumulation_steps
        self._plans: dict[int, list[MicroBatch]] = {}
        self._plan_sizes: dict[int, int] = {}
        steps_per_epoch = len(self._plan(0)) // self.micro_per_step
        if steps_per_epoch == 0:
            raise ValueError(
                f"{len(data)} samples make fewer micro-batches than one step needs ({self.micro_per_step}); "
                "lower micro_batch_size or gradient_accumulation_steps"
            )
        total = max(1, math.floor(config.epochs * len(self._plan(0)) / self.micro_per_step))
        self.state = TrainerState(step=0, total_steps=min(total, config.max_steps or total), history=[])
        self._matmul_params = matmul_parameters(self.model)

    # --- setup -----------------------------------------------------------------------------------------------

    def _optimizer(self) -> torch.optim.Optimizer:
        decay = [p for p in self.model.parameters() if p.requires_grad and p.ndim >= 2]
        no_decay = [p for p in self.model.parameters() if p.requires_grad and p.ndim < 2]
        groups = [
            {"params": decay, "weight_decay": self.config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        betas = (self.config.adam_beta1, self.config.adam_beta2)
        fused = self.runtime.device.type == "cuda"
        return torch.optim.AdamW(groups, lr=self.config.learning_rate, betas=betas, fused=fused)

    def _targets_per_sample(self) -> np.ndarray:
        carries = (self.data.labels != IGNORE_INDEX).astype(np.int64)
        return np.add.reduceat(carries, self.data.offsets[:-1])

    def _plan(self, epoch: int) -> list[MicroBatch]:
        cfg = self.config
        if epoch not in self._plans:
            if len(self._plans) > 2:  # keep a few epochs: a large corpus makes big plans
                self._plans.pop(min(self._plans))
            self._plans[epoch] = plan_epoch(
                self.data.lengths,
                seed=cfg.seed,
                epoch=epoch,
                packing=cfg.packing,
                pack_length=cfg.pack_length,
                rows_per_batch=cfg.micro_batch_size,
            )
            self._plan_sizes[epoch] = len(self._plans[epoch])
        return self._plans[epoch]

    def _plan_size(self, epoch: int) -> int:
        return self._plan_sizes[epoch] if epoch in self._plan_sizes else len(self._plan(epoch))

    def _step_micro_batches(self, step: int) -> list[MicroBatch]:
        """Epochs' plans form one stream (packing makes epochs differ in length); a step takes the next slice."""
        offset, epoch = step * self.micro_per_step, 0
        while offset >= self._plan_size(epoch):
            offset -= self._plan_size(epoch)
            epoch += 1
        taken: list[MicroBatch] = []
        while len(taken) < self.micro_per_step:
            taken += self._plan(epoch)[offset : offset + self.micro_per_step - len(taken)]
            offset, epoch = 0, epoch + 1
        return taken

    def _collate(self, batch: MicroBatch) -> Batch:
        if self.config.packing:
            return collate_packed(self.data, batch, pad_id(self.tokenizer), self.config.pack_length)
        return collate_padded(self.data, batch, pad_id(self.tokenizer))

    # --- one step --------------------------------------------------------------------------------------------

    def _run_step(self, step: int) -> dict[str, Any]:
        cfg, runtime = self.config, self.runtime
        everything = self._step_micro_batches(step)
        mine = everything[runtime.rank :: runtime.world_size]
        samples = [i for batch in everything for row in batch for i in row]
        global_targets = int(self.targets[samples].sum())
        lr = self._lr(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        started = time.perf_counter()
        loss_sum, row_tokens = self._accumulate(mine, global_targets)
        grad_norm = self._clip()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        loss = runtime.all_reduce_sum(loss_sum).item()
        step_time = time.perf_counter() - started
        lengths = [int(self.data.lengths[i]) for i in samples]
        flops = step_flops(self._matmul_params, self._layers, self._attention_width, lengths)
        peak = cfg.peak_tflops * runtime.world_size if cfg.peak_tflops else None
        return {
            "step": step + 1,
            "loss": loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "target_tokens": global_targets,
            "real_tokens": sum(lengths),
            "row_tokens": row_tokens * runtime.world_size,
            "step_time": step_time,
            "tokens_per_s": sum(lengths) / step_time,
            "mfu": mfu(flops, step_time, peak),
        }

    def _accumulate(self, mine: list[MicroBatch], global_targets: int) -> tuple[torch.Tensor, int]:
        runtime = self.runtime
        # max(1, ...): a step whose samples are all prompt (cut at max_length) adds zero loss, not NaN.
        count = torch.tensor(max(1, global_targets), device=runtime.device, dtype=torch.float32)
        # FSDP averages gradients over processes; the loss is already a share of the global mean.
        scale = runtime.world_size if runtime.fsdp else 1
        loss_sum = torch.zeros((), device=runtime.device, dtype=torch.float32)
        row_tokens = 0
        for index, micro in enumerate(mine):
            batch = self._collate(micro)
            row_tokens += batch.inputs["input_ids"].numel()
            gradient_sync(self.model, runtime, enabled=index == len(mine) - 1)
            with runtime.autocast():
                out = self.model(**batch.to(runtime.device), num_items_in_batch=count, use_cache=False)
            (out.loss * scale).backward()
            loss_sum += out.loss.detach().float()
        return loss_sum, row_tokens

    def _clip(self) -> float | None:
        if self.config.max_grad_norm is None:
            return None
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        return float(norm)

    def _lr(self, step: int) -> float:
        cfg, total = self.config, self.state.total_steps
        return learning_rate(
            step,
            total=total,
            warmup=warmup_steps(total, cfg.warmup_ratio, cfg.warmup_steps),
            peak=cfg.learning_rate,
            min_ratio=cfg.min_lr_ratio,
        )

    @property
    def _layers(self) -> int:
        return self.model.config.num_hidden_layers

    @property
    def _attention_width(self) -> int:
        config = self.model.config
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return config.num_attention_heads * head_dim

    # --- the loop --------------------------------------------------------------------------------------------

    def train(self) -> TrainResult:
        cfg = self.config
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
        self._resume()
        first_step, loop_started = self.state.step, time.perf_counter()
        while self.state.step < self.state.total_steps:
            metrics = self._run_step(self.state.step)
            self.state.step += 1
            self.state.history.append(metrics)
            self._log(metrics)
            self._fit_budget(first_step, loop_started)
            if cfg.save_steps and self.state.step % cfg.save_steps == 0 and self.state.step < self.state.total_steps:
                self.save()
        return self._finish()

    def _resume(self) -> None:
        path = resolve_resume(self.config.output_dir, self.config.resume_from)
        if path is None:
            self._rewrite_metrics()
            return
        self.state = load_checkpoint(path, self.model, self.optimizer, self.runtime)
        self._rewrite_metrics()
        self._say(f"resumed from {path} at step {self.state.step}/{self.state.total_steps}")

    def _fit_budget(self, first_step: int, loop_started: float) -> None:
        """Once `budget_probe_steps` are timed, cut total_steps to what fits the budget (schedule follows)."""
        cfg = self.config
        done = self.state.step - first_step
        if cfg.time_budget_s is None or done != cfg.budget_probe_steps:
            return
        recent = self.state.history[-max(1, done - 1) :]
        per_step = sum(m["step_time"] for m in recent) / len(recent)
        left = cfg.time_budget_s - (time.perf_counter() - loop_started)
        fitting = self.state.step + max(0, int(left / per_step))
        fitting = int(self.runtime.all_reduce_sum(torch.tensor(fitting, device=self.runtime.device)).item())
        fitting //= self.runtime.world_size
        if fitting < self.state.total_steps:
            self._say(f"time budget {cfg.time_budget_s:.0f}s: {fitting} steps fit (of {self.state.total_steps})")
            self.state.total_steps = fitting

    def save(self) -> Path:
        path = self.config.output_dir / f"checkpoint-{self.state.step}"
        save_checkpoint(path, self.model, self.optimizer, self.state, self.runtime)
        if self.runtime.is_main:
            prune_checkpoints(self.config.output_dir, self.config.save_total_limit)
        return path

    def _finish(self) -> TrainResult:
        cfg = self.config
        final = cfg.output_dir / "final"
        export_hf(self.model, self.tokenizer, final, cfg.save_dtype, self.runtime)
        summary = {
            "steps": self.state.step,
            "final_loss": self.state.history[-1]["loss"] if self.state.history else None,
            "tokens": sum(m["real_tokens"] for m in self.state.history),
            **steady_throughput(self.state.history),
        }
        if self.runtime.is_main:
            (cfg.output_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
            if cfg.plot:
                from training.sft._plot import plot_loss

                plot_loss(self.state.history, cfg.output_dir / "loss.png", title=str(cfg.output_dir.name))
        return TrainResult(final, self.state.step, self.state.history, summary, self.model, cfg)

    # --- reporting -------------------------------------------------------------------------------------------

    def _rewrite_metrics(self) -> None:
        if self.runtime.is_main:
            lines = "".join(json.dumps(m) + "\n" for m in self.state.history)
            (self.config.output_dir / "metrics.jsonl").write_text(lines, encoding="utf-8")

    def _log(self, metrics: dict[str, Any]) -> None:
        if not self.runtime.is_main:
            return
        with (self.config.output_dir / "metrics.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics) + "\n")
        if metrics["step"] % self.config.logging_steps and metrics["step"] != self.state.total_steps:
            return
        util = f" mfu {metrics['mfu']:.1%}" if metrics["mfu"] is not None else ""
        self._say(
            f"step {metrics['step']}/{self.state.total_steps} loss {metrics['loss']:.4f} lr {metrics['lr']:.2e} "
            f"{metrics['tokens_per_s']:,.0f} tok/s{util} ({metrics['step_time']:.2f}s)"
        )

    def _say(self, text: str) -> None:
        if self.runtime.is_main:
            print(text, flush=True)
