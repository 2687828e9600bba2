"""The small-model recipe end to end on one GPU, in phases with time budgets, a table printed last.

1. pretrain: a Llama built from scratch (~0.86B parameters, training/configs/small-pretrain.yaml) learns
   Python from this machine's stdlib and site-packages, for --pretrain-seconds.
2. sft: the same model in memory (compiled once) fine-tuned on PyX + PyX-R JSONL (training/configs/small-sft.yaml)
   for --sft-seconds; its steady-state tokens/s and MFU are "ours".
3. plain: a plain transformers training step (eager, sdpa, fused AdamW, bf16 autocast, right-padded batches of
   the same PyX data; and full 2048-token rows) on a fresh copy of the trained checkpoint.
4. generate: the saved Hugging Face checkpoint reloads and answers a PyX prompt.

Each phase writes under --work (checkpoints) and --out (small files that come back: metrics, plots, results.json,
a table). `--size tiny --device cpu` is a smoke run of the same code on a CPU.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.sft_throughput import PlainStepResult, plain_step_throughput  # noqa: E402
from training.sft import (  # noqa: E402
    PretrainConfig,
    SFTConfig,
    TrainConfig,
    TrainResult,
    load_config,
    render_record,
    run_pretrain,
    run_sft,
    setup_runtime,
)

CONFIGS = ROOT / "training" / "configs"
SAMPLE_DATA = ROOT / "tests" / "training" / "data"
TINY = [  # CPU smoke sizes, both phases
    "pack_length=512", "max_length=512", "micro_batch_size=2", "compile=false", "precision=fp32", "logging_steps=1",
]
TINY_PRETRAIN = [
    "init.vocab_size=1024", "init.hidden_size=64", "init.intermediate_size=128", "init.num_hidden_layers=2",
    "init.num_attention_heads=4", "init.tokenizer_corpus_files=40", "corpus_max_bytes=400000",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "runs" / "gpu_train")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/semcoder-gpu-train"), help="checkpoints")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--size", default="gpu", choices=["gpu", "tiny"], help="tiny: CPU smoke sizes")
    parser.add_argument("--pyx", type=Path, action="append", help="PyX JSONL (repeatable)")
    parser.add_argument("--pyxr", type=Path, action="append", help="PyX-R JSONL (repeatable)")
    parser.add_argument("--pretrain-seconds", type=float, default=150.0)
    parser.add_argument("--sft-seconds", type=float, default=120.0)
    parser.add_argument("--plain-steps", type=int, default=8, help="timed steps of each plain variant")
    parser.add_argument("--plain-batch", type=int, default=16, help="samples (rows) per plain step")
    parser.add_argument("--peak-tflops", type=float, default=790.0, help="bf16 ceiling for MFU (H100/H200)")
    parser.add_argument("--attn", default="sdpa", help="attention implementation of our step")
    parser.add_argument(
        "--variant-attn", default="flex_attention", help="attention of the optional variant phase of our step"
    )
    parser.add_argument("--variant-steps", type=int, default=0, help="steps of the variant phase (0: skip)")
    parser.add_argument("--set-pretrain", action="append", default=[], metavar="K=V")
    parser.add_argument("--set-sft", action="append", default=[], metavar="K=V")
    return parser.parse_args(argv)


def data_files(args: argparse.Namespace) -> list[dict[str, str]]:
    pyx = args.pyx or [ROOT / "data" / "pyx.jsonl"]
    pyxr = args.pyxr or [ROOT / "data" / "pyxr.jsonl"]
    files = [p for p in [*pyx, *pyxr] if p.exists()]
    if not files:
        print(f"no PyX data at {[str(p) for p in pyx + pyxr]}: using the test samples", flush=True)
        files = [SAMPLE_DATA / "pyx_sample.jsonl", SAMPLE_DATA / "pyxr_sample.jsonl"]
    return [{"path": str(p)} for p in files]


def common_overrides(args: argparse.Namespace) -> list[str]:
    sets = [f"device={args.device}", f"attn_implementation={args.attn}"]
    sets += [f"peak_tflops={args.peak_tflops}"] if args.device == "cuda" else ["peak_tflops=null"]
    return sets + (TINY if args.size == "tiny" else [])


def phase_pretrain(args: argparse.Namespace) -> TrainResult:
    sets = [
        *common_overrides(args),
        *(TINY_PRETRAIN if args.size == "tiny" else []),
        f"model={args.work / 'init'}",
        f"output_dir={args.work / 'pretrain'}",
        f"time_budget_s={args.pretrain_seconds}",
        "max_steps=100000",
        "epochs=100",
        *args.set_pretrain,
    ]
    config = load_config(PretrainConfig, CONFIGS / "small-pretrain.yaml", sets)
    return run_pretrain(config, setup_runtime(config))


def phase_sft(args: argparse.Namespace, pretrained: TrainResult) -> TrainResult:
    sets = [
        *common_overrides(args),
        f"model={pretrained.final_dir}",
        f"output_dir={args.work / 'sft'}",
        f"time_budget_s={args.sft_seconds}",
        f"data={json.dumps(args.data)}",
        *args.set_sft,
    ]
    config = load_config(SFTConfig, CONFIGS / "small-sft.yaml", sets)
    return run_sft(config, setup_runtime(config), model=pretrained.model)


def phase_variant(args: argparse.Namespace, checkpoint: Path) -> TrainResult:
    """Our step with another attention implementation, on a fresh copy of the SFT checkpoint (timing only)."""
    sets = [
        *common_overrides(args),
        f"attn_implementation={args.variant_attn}",
        f"model={checkpoint}",
        f"output_dir={args.work / 'variant'}",
        f"max_steps={args.variant_steps}",
        f"data={json.dumps(args.data)}",
        "plot=false",
        *args.set_sft,
    ]
    config = load_config(SFTConfig, CONFIGS / "small-sft.yaml", sets)
    return run_sft(config, setup_runtime(config))


def phase_generate(checkpoint: Path, data: list[dict[str, str]], device: str) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.bfloat16).to(device)
    first = json.loads(Path(data[0]["path"]).read_text(encoding="utf-8").splitlines()[0])
    prompt = render_record(first, "auto", data[0]["path"]).prompt
    inputs = tokenizer(prompt, return_tensors="pt").to(device)
    out = model.generate(**inputs, max_new_tokens=64, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def collect(args: argparse.Namespace, key: str, label: str, result: TrainResult) -> dict[str, Any]:
    """Copies the run's metrics and plot to --out as <key>_metrics.jsonl, <key>_loss.png."""
    run_dir = result.final_dir.parent
    for file, target in (("metrics.jsonl", f"{key}_metrics.jsonl"), ("loss.png", f"{key}_loss.png")):
        if (run_dir / file).exists():
            shutil.copy(run_dir / file, args.out / target)
    return {"phase": label, **result.summary}


def describe(config: TrainConfig) -> str:
    on = [name for name in ("packing", "compile") if getattr(config, name)]
    return f"sft ours ({', '.join([*on, config.precision, config.attn_implementation])})"


def free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[dict[str, Any]], ours: dict[str, Any], plain: list[PlainStepResult]) -> str:
    lines = [
        f"{'run':<52} {'steps':>6} {'tokens/s':>10} {'MFU':>7} {'pad':>6} {'loss':>8}",
        *[
            f"{r['phase']:<52} {r['steps']:>6} {fmt(r['tokens_per_s'], ',.0f'):>10} {fmt(r['mfu'], '.1%'):>7} "
            f"{fmt(r['padding_fraction'], '.1%'):>6} {fmt(r['final_loss'], '.4f'):>8}"
            for r in rows
        ],
        *[
            f"{p.name:<52} {p.steps:>6} {p.tokens_per_s:>10,.0f} {fmt(p.mfu, '.1%'):>7} "
            f"{p.padding_fraction:>6.1%} {p.final_loss:>8.4f}"
            for p in plain
        ],
    ]
    if plain and plain[0].tokens_per_s:
        lines.append(f"ours (sft) / {plain[0].name}: {ours['tokens_per_s'] / plain[0].tokens_per_s:.2f}x tokens/s")
    return "\n".join(lines)


class Phases:
    """Runs phases, timing each; an optional phase that fails is reported and the run goes on."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.errors: dict[str, str] = {}

    def run(self, name: str, work: Callable[[], Any], optional: bool = False) -> Any:
        started = time.perf_counter()
        try:
            return work()
        except Exception as error:
            if not optional:
                raise
            self.errors[name] = f"{type(error).__name__}: {error}"
            print(f"{name} phase failed: {self.errors[name]}", flush=True)
            return None
        finally:
            self.timings[name] = time.perf_counter() - started
            free_memory()


def plain_phase(args: argparse.Namespace, checkpoint: Path) -> list[PlainStepResult]:
    return plain_step_throughput(
        checkpoint,
        args.data,
        device=args.device,
        batch=args.plain_batch,
        steps=args.plain_steps,
        peak_tflops=args.peak_tflops if args.device == "cuda" else None,
        row_length=512 if args.size == "tiny" else 2048,
        precision="fp32" if args.size == "tiny" else "bf16-autocast",
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.data = data_files(args)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    phases, started = Phases(), time.perf_counter()

    pretrained = phases.run("pretrain", partial(phase_pretrain, args))
    rows = [collect(args, "pretrain", "pretrain (causal LM on Python source)", pretrained)]
    tuned = phases.run("sft", partial(phase_sft, args, pretrained))
    del pretrained, tuned.model  # the plain step gets a fresh copy; free the GPU first
    ours = collect(args, "sft", describe(tuned.config), tuned)
    rows.append(ours)
    plain = phases.run("plain", partial(plain_phase, args, tuned.final_dir))
    if args.variant_steps:
        variant = phases.run("variant", partial(phase_variant, args, tuned.final_dir), optional=True)
        if variant is not None:
            rows.append(collect(args, "variant", describe(variant.config), variant))
            del variant.model
    sample = phases.run("generate", partial(phase_generate, tuned.final_dir, args.data, args.device))
    phases.timings["total"] = time.perf_counter() - started

    results = {
        "phases": rows,
        "plain": [p.model_dump() for p in plain],
        "timings_s": phases.timings,
        "errors": phases.errors,
        "checkpoint": str(tuned.final_dir),
        "generated_sample": sample,
        "table": table(rows, ours, plain),
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\ncheckpoint: {tuned.final_dir}\ngenerated: {sample[:200]!r}")
    print("phase seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in phases.timings.items()))
    print("\n" + results["table"], flush=True)


if __name__ == "__main__":
    main()
