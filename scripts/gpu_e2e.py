"""The whole system on GPUs (issue #9) in two device calls on one warm machine, a table printed after each.

`train`: a ~100M Llama built from scratch learns Python from the machine's stdlib and site-packages (pretraining,
under a time budget), then the paper's monologue ablation in small: two SFT arms from that checkpoint with the
same compute (the same number of steps of the same packed 2048-token rows), one on PyX with its execution
monologues, one on the same PyX with every monologue emptied (`semcoder data strip-monologue`), both with
PyX-R. The step count comes from the pretraining's measured tokens/s, so the arms fit --sft-seconds. With two
GPUs the arms run side by side.

`evaluate`: every checkpoint (random init, pretrained, both SFT arms) is served by vLLM through
`semcoder model serve`, all four at once, each with its explicit share of the GPUs present (one GPU: four
servers with a fixed KV cache each, scripts/experiment_common.py); `semcoder eval cruxeval-o` and the held-out PyX execution-prediction set
(`semcoder data split`, programs no training record saw) run through the `openai` backend against each, and
`semcoder repair` fixes the example project with the SFT model proposing the patches.

Small files come back in --out (at most 8 files leave a device machine: a table, a log and one tarball);
checkpoints stay in --work, which the second call reads. `--size tiny --device cpu --server cpu` runs the same
orchestration on a CPU with a transformers-backed server (scripts/cpu_openai_server.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiment_common import (
    ROOT,
    SEMCODER,
    SIZES,
    bundle_dir,
    copy_into_bundle,
    eval_job,
    finish,
    gpu_count,
    logs,
    preflight,
    pretrain,
    servers,
    sft_run,
    steps_for,
)

MODELS = ("untrained", "pretrained", "sft", "sft-no-monologue")


@dataclass(frozen=True)
class Arm:
    name: str
    data: list[Path]
    output: str


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["train", "evaluate"])
    parser.add_argument("--data", type=Path, required=True,
                        help="a `semcoder data split` folder with train/, train_nomono/ and heldout/")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "runs" / "gpu_e2e")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/semcoder-e2e"), help="checkpoints")
    parser.add_argument("--size", choices=sorted(SIZES), default="gpu")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--gpus", type=int, default=None, help="GPUs to use (default: all visible)")
    parser.add_argument("--pretrain-seconds", type=float, default=150.0)
    parser.add_argument("--sft-seconds", type=float, default=120.0, help="each arm's share of GPU time")
    parser.add_argument("--corpus-mb", type=float, default=100.0, help="Python source read for pretraining")
    parser.add_argument("--server", choices=["vllm", "cpu"], default="vllm")
    parser.add_argument("--kv-cache-gib", type=float, default=4.0, help="each vLLM server's KV cache")
    parser.add_argument("--crux-limit", type=int, default=None, help="only the first N CRUXEval tasks")
    parser.add_argument("--heldout-limit", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=1024, help="per generation (monologue + answer)")
    parser.add_argument("--workers", type=int, default=4, help="sandbox workers per eval")
    return parser.parse_args(argv)


# --- train ---------------------------------------------------------------------------------------------------


def arms(args: argparse.Namespace) -> list[Arm]:
    train, nomono = args.data / "train", args.data / "train_nomono"
    return [
        Arm("sft", [train / "pyx.jsonl", train / "pyx_r.jsonl"], "sft_mono"),
        Arm("sft-no-monologue", [nomono / "pyx.jsonl", train / "pyx_r.jsonl"], "sft_nomono"),
    ]


def sft_arm(args: argparse.Namespace, arm: Arm, steps: int, gpu: int) -> dict[str, Any]:
    # The time budget is only a guard against a much slower GPU: the arms must run the same steps to compare.
    return sft_run(args, args.work / arm.output, arm.data, steps, gpu, logs(args) / f"{arm.output}.log",
                   [f"time_budget_s={args.sft_seconds * 3}"])


def train(args: argparse.Namespace) -> str:
    for arm in arms(args):
        missing = [str(p) for p in arm.data if not p.exists()]
        if missing:
            raise SystemExit(f"missing training data: {missing} (run `semcoder data split` and strip-monologue)")
    started = time.perf_counter()
    summaries = {"pretrained": pretrain(args)}
    steps = steps_for(args, args.sft_seconds, summaries["pretrained"]["tokens_per_s"])
    print(f"pretraining ran at {summaries['pretrained']['tokens_per_s']:,.0f} tokens/s: {steps} steps per arm",
          flush=True)
    with ThreadPoolExecutor(gpu_count(args)) as pool:
        futures = {arm.name: pool.submit(sft_arm, args, arm, steps, gpu) for gpu, arm in enumerate(arms(args))}
        summaries.update({name: future.result() for name, future in futures.items()})
    for run in ("pretrain", "sft_mono", "sft_nomono"):
        for name in ("metrics.jsonl", "loss.png", "summary.json"):
            if (args.work / run / name).exists():
                copy_into_bundle(args, args.work / run / name, f"{run}_{name}")
    return train_table(summaries, time.perf_counter() - started, gpu_count(args))


def train_table(summaries: dict[str, dict[str, Any]], seconds: float, gpus: int) -> str:
    def cell(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [f"{'run':<40} {'steps':>6} {'tokens':>12} {'tokens/s':>10} {'MFU':>7} {'final loss':>10}"]
    labels = {"pretrained": "pretrain (Python source)", "sft": "SFT arm: PyX with monologues + PyX-R",
              "sft-no-monologue": "SFT arm: PyX without monologues + PyX-R"}
    for name, label in labels.items():
        s = summaries[name]
        lines.append(f"{label:<40} {s['steps']:>6} {s['tokens']:>12,} {cell(s['tokens_per_s'], ',.0f'):>10} "
                     f"{cell(s.get('mfu'), '.1%'):>7} {cell(s['final_loss'], '.4f'):>10}")
    lines.append(f"wall {seconds:.0f} s on {gpus} GPU(s); the two arms ran the same steps of the same row size")
    return "\n".join(lines)


# --- evaluate ------------------------------------------------------------------------------------------------


def checkpoints(args: argparse.Namespace) -> dict[str, Path]:
    return {"untrained": args.work / "init", "pretrained": args.work / "pretrain" / "final",
            "sft": args.work / "sft_mono" / "final", "sft-no-monologue": args.work / "sft_nomono" / "final"}


def e2e_eval(args: argparse.Namespace, name: str, port: int, bench: str) -> dict[str, Any]:
    out = args.work / "evals" / f"{name}_{bench}"
    held = bench == "heldout"
    score = eval_job(args, name, port, "cruxeval-o", out, args.data / "heldout" / "exec_o.jsonl" if held else None,
                     args.heldout_limit if held else args.crux_limit)
    copy_into_bundle(args, out / "generations.jsonl", f"generations_{name}_{bench}.jsonl")
    return score


def repair_job(args: argparse.Namespace, port: int, patcher: str) -> dict[str, Any]:
    env = {**os.environ, "SEMCODER_MODEL_URL": f"http://127.0.0.1:{port}/v1"}
    log = logs(args) / f"repair_{patcher}.log"
    command = [*SEMCODER, "repair", "examples/inventory", "--model", "openai:sft", "--dialect", "semcoder",
               "--patcher", patcher,
               "--db", str(args.work / f"repair_{patcher}.sqlite"), "--json", "--max-time", "240"]
    print(f"$ {' '.join(command)}  (log: {log.name})", flush=True)
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=handle, env=env, cwd=ROOT, text=True)
    shutil.copy(log, bundle_dir(args) / log.name)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"status": f"no outcome (exit {done.returncode}; see {log.name})"}
    return json.loads(lines[-1])


def evaluate(args: argparse.Namespace) -> str:
    paths = checkpoints(args)
    missing = [str(p) for p in paths.values() if not (p / "config.json").exists()]
    if missing:
        raise SystemExit(f"missing checkpoints {missing}: run the train phase first on this machine")
    # All four at once: on one GPU each gets a quarter of it (experiment_common.serve_command).
    models = {name: paths[name] for name in MODELS}
    with servers(args, models, 8100) as (ports, healthy_s), ThreadPoolExecutor(2 * len(MODELS) + 2) as pool:
        evals = {(name, bench): pool.submit(e2e_eval, args, name, ports[name], bench)
                 for name in MODELS for bench in ("cruxeval-o", "heldout")}
        repairs = {patcher: pool.submit(repair_job, args, ports["sft"], patcher) for patcher in ("model", "both")}
        scores = {key: future.result() for key, future in evals.items()}
        outcomes = {key: future.result() for key, future in repairs.items()}
    (bundle_dir(args) / "evaluate.json").write_text(json.dumps(
        {"scores": {f"{n}/{b}": s for (n, b), s in scores.items()}, "repairs": outcomes}, indent=2))
    return eval_table(scores, outcomes, healthy_s)


def margin(rate: float, n: int) -> float:
    return 100 * 1.96 * math.sqrt(rate * (1 - rate) / n) if n else 0.0


def eval_table(scores: dict[tuple[str, str], dict[str, Any]], outcomes: dict[str, dict[str, Any]],
               healthy_s: float) -> str:
    crux_n, held_n = scores[(MODELS[0], "cruxeval-o")]["tasks"], scores[(MODELS[0], "heldout")]["tasks"]
    lines = [f"{'model (same ~98M Llama)':<26} {f'CRUXEval-O ({crux_n})':>18} {f'held-out PyX exec-O ({held_n})':>30}"]
    for name in MODELS:
        crux, held = scores[(name, "cruxeval-o")], scores[(name, "heldout")]
        lines.append(f"{name:<26} {100 * crux['pass_at_1']:>17.2f}% {100 * held['pass_at_1']:>29.2f}%")
    mono, bare = scores[("sft", "heldout")]["pass_at_1"], scores[("sft-no-monologue", "heldout")]["pass_at_1"]
    lines.append(f"ablation (held-out exec-O, same compute): with monologues {100 * mono:.2f}% "
                 f"(+-{margin(mono, held_n):.2f}), without {100 * bare:.2f}% (+-{margin(bare, held_n):.2f}); "
                 "+- is a 95% normal interval in points")
    for patcher, outcome in outcomes.items():
        lines.append(f"repair examples/inventory, sft model, --patcher {patcher}: {outcome.get('status')}, "
                     f"{outcome.get('iterations', '-')} iterations, tests passing {outcome.get('tests_passed', '-')}/"
                     f"{outcome.get('tests_total', '-')}")
    lines.append(f"4 vLLM servers healthy after {healthy_s:.0f} s; pass@1 greedy, openai backend")
    return "\n".join(lines)


# --- output --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    preflight(args, serve=args.phase == "evaluate")
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        table = train(args) if args.phase == "train" else evaluate(args)
    except Exception:
        finish(args, f"{args.phase} failed; see the logs in {args.phase}_bundle.tgz")
        raise
    finish(args, table)


if __name__ == "__main__":
    main()
