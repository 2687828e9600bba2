"""The whole system on GPUs (issue #9) in two device calls on one warm machine, a table printed after each.

`train`: a ~100M Llama built from scratch learns Python from the machine's stdlib and site-packages (pretraining,
under a time budget), then the paper's monologue ablation in small: two SFT arms from that checkpoint with the
same compute (the same number of steps of the same packed 2048-token rows), one on PyX with its execution
monologues, one on the same PyX with every monologue emptied (`semcoder data strip-monologue`), both with
PyX-R. The step count comes from the pretraining's measured tokens/s, so the arms fit --sft-seconds. With two
GPUs the arms run side by side.

`evaluate`: every checkpoint (random init, pretrained, both SFT arms) is served by vLLM through
`semcoder model serve`; `semcoder eval cruxeval-o` and the held-out PyX execution-prediction set
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
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.models import stop_server, wait_for_health  # noqa: E402

CONFIGS = ROOT / "training" / "configs"
SEMCODER = [sys.executable, "-m", "agent.cli"]
TRAIN = [sys.executable, "-m", "training.train_cli"]

# ~98M parameters (training/tiny_model.py's "gpu" preset): minutes of H200 time train it on tens of millions
# of tokens, where the 0.86B recipe model would see only a few (it stays the MFU run, scripts/gpu_train.py).
SIZES = {
    "gpu": [
        "init.vocab_size=8192", "init.hidden_size=768", "init.intermediate_size=2048", "init.num_hidden_layers=12",
        "init.num_attention_heads=12", "init.max_position_embeddings=4096",
    ],
    "tiny": [
        "init.vocab_size=1024", "init.hidden_size=64", "init.intermediate_size=128", "init.num_hidden_layers=2",
        "init.num_attention_heads=4", "init.tokenizer_corpus_files=40", "init.max_position_embeddings=2048",
        "corpus_max_bytes=400000",
    ],
}
TINY_RUN = ["pack_length=512", "max_length=512", "micro_batch_size=2", "compile=false", "precision=fp32",
            "logging_steps=1", "peak_tflops=null", "device=cpu"]
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
    parser.add_argument("--crux-limit", type=int, default=None, help="only the first N CRUXEval tasks")
    parser.add_argument("--heldout-limit", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=1024, help="per generation (monologue + answer)")
    parser.add_argument("--workers", type=int, default=4, help="sandbox workers per eval")
    return parser.parse_args(argv)


def gpu_count(args: argparse.Namespace) -> int:
    if args.device == "cpu":
        return 1
    if args.gpus:
        return args.gpus
    import torch

    return max(1, torch.cuda.device_count())


def on_gpu(args: argparse.Namespace, index: int) -> dict[str, str]:
    env = dict(os.environ)
    if args.device == "cuda":
        env["CUDA_VISIBLE_DEVICES"] = str(index % gpu_count(args))
    return env


def run_logged(command: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    """Runs to completion with its output in `log`; a failure raises with the log's tail."""
    print(f"$ {' '.join(command)}  (log: {log.name})", flush=True)
    with log.open("w") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    if code:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{command[:4]} exited {code}; end of {log}:\n{tail}")


def logs(args: argparse.Namespace) -> Path:
    path = args.work / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def size_overrides(args: argparse.Namespace) -> list[str]:
    return [*(TINY_RUN if args.size == "tiny" else []), *(["device=cuda"] if args.device == "cuda" else [])]


def as_sets(pairs: list[str]) -> list[str]:
    return [item for pair in pairs for item in ("--set", pair)]


# --- train ---------------------------------------------------------------------------------------------------


def pretrain(args: argparse.Namespace) -> dict[str, Any]:
    sets = [
        *SIZES[args.size], *size_overrides(args),
        f"model={args.work / 'init'}", f"output_dir={args.work / 'pretrain'}",
        f"time_budget_s={args.pretrain_seconds}", "max_steps=1000000", "epochs=100", "learning_rate=8e-4",
        "warmup_steps=50", *([f"corpus_max_bytes={int(args.corpus_mb * 1e6)}"] if args.size == "gpu" else []),
    ]
    command = [*TRAIN, "pretrain", "--config", str(CONFIGS / "small-pretrain.yaml"), *as_sets(sets)]
    run_logged(command, logs(args) / "pretrain.log", on_gpu(args, 0))
    return json.loads((args.work / "pretrain" / "summary.json").read_text())


def arms(args: argparse.Namespace) -> list[Arm]:
    train, nomono = args.data / "train", args.data / "train_nomono"
    return [
        Arm("sft", [train / "pyx.jsonl", train / "pyx_r.jsonl"], "sft_mono"),
        Arm("sft-no-monologue", [nomono / "pyx.jsonl", train / "pyx_r.jsonl"], "sft_nomono"),
    ]


def equal_steps(args: argparse.Namespace, pretrained: dict[str, Any]) -> int:
    """Steps that fill --sft-seconds at the pretraining's measured speed (same rows, same model)."""
    row_tokens = 512 * 2 if args.size == "tiny" else 2048 * 16
    return max(4, math.floor(args.sft_seconds * pretrained["tokens_per_s"] / row_tokens))


def sft_arm(args: argparse.Namespace, arm: Arm, steps: int, gpu: int) -> dict[str, Any]:
    sets = [
        *size_overrides(args),
        f"model={args.work / 'pretrain' / 'final'}", f"output_dir={args.work / arm.output}",
        f"data={json.dumps([{'path': str(p)} for p in arm.data])}",
        f"max_steps={steps}", "epochs=1000",
        # Only a guard against a much slower GPU: the arms must run the same steps to compare.
        f"time_budget_s={args.sft_seconds * 3}",
    ]
    command = [*TRAIN, "sft", "--config", str(CONFIGS / "small-sft.yaml"), *as_sets(sets)]
    run_logged(command, logs(args) / f"{arm.output}.log", on_gpu(args, gpu))
    return json.loads((args.work / arm.output / "summary.json").read_text())


def train(args: argparse.Namespace) -> str:
    for arm in arms(args):
        missing = [str(p) for p in arm.data if not p.exists()]
        if missing:
            raise SystemExit(f"missing training data: {missing} (run `semcoder data split` and strip-monologue)")
    started = time.perf_counter()
    summaries = {"pretrained": pretrain(args)}
    steps = equal_steps(args, summaries["pretrained"])
    print(f"pretraining ran at {summaries['pretrained']['tokens_per_s']:,.0f} tokens/s: {steps} steps per arm",
          flush=True)
    with ThreadPoolExecutor(gpu_count(args)) as pool:
        futures = {arm.name: pool.submit(sft_arm, args, arm, steps, gpu) for gpu, arm in enumerate(arms(args))}
        summaries.update({name: future.result() for name, future in futures.items()})
    for run in ("pretrain", "sft_mono", "sft_nomono"):
        for name in ("metrics.jsonl", "loss.png", "summary.json"):
            if (args.work / run / name).exists():
                bundle_dir(args).joinpath(f"{run}_{name}").write_bytes((args.work / run / name).read_bytes())
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


def serve_command(args: argparse.Namespace, name: str, path: Path, port: int) -> list[str]:
    if args.server == "cpu":
        return [sys.executable, str(ROOT / "scripts" / "cpu_openai_server.py"), str(path), "--name", name,
                "--port", str(port)]
    # Two small models share each GPU; eager mode starts in seconds instead of compiling for minutes.
    return [*SEMCODER, "model", "serve", str(path), "--served-model-name", name, "--port", str(port),
            "--gpu-memory-utilization", "0.3", "--enforce-eager", "--max-model-len", "4096"]


def wait_all_healthy(servers: dict[str, subprocess.Popen], ports: dict[str, int], log_dir: Path) -> float:
    """Seconds until every server answers /health (they start together, so the slowest decides)."""
    started = time.perf_counter()
    for name, server in servers.items():
        wait_for_health(server, f"http://127.0.0.1:{ports[name]}", log_dir / f"serve_{name}.log", timeout_s=600)
        print(f"{name} healthy after {time.perf_counter() - started:.0f} s", flush=True)
    return time.perf_counter() - started


def eval_job(args: argparse.Namespace, name: str, port: int, bench: str) -> dict[str, Any]:
    out = args.work / "evals" / f"{name}_{bench}"
    limit = args.crux_limit if bench == "cruxeval-o" else args.heldout_limit
    command = [
        *SEMCODER, "eval", "cruxeval-o", "--model", f"http://127.0.0.1:{port}/v1", "--model-name", name,
        "--dialect", "semcoder", "--max-tokens", str(args.max_tokens), "--out", str(out), "--workers", str(args.workers), "--json",
        "--quiet", *(["--limit", str(limit)] if limit else []),
        *(["--data", str(args.data / "heldout" / "exec_o.jsonl")] if bench == "heldout" else []),
    ]
    run_logged(command, logs(args) / f"eval_{name}_{bench}.log", dict(os.environ))
    report = json.loads((out / "report.json").read_text())
    shutil.copy(out / "generations.jsonl", bundle_dir(args) / f"generations_{name}_{bench}.jsonl")
    return {"pass_at_1": report["rounds"][0]["pass_at_1"], "tasks": report["n_tasks"]}


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
    ports = {name: 8100 + index for index, name in enumerate(MODELS)}
    servers: dict[str, subprocess.Popen] = {}
    try:
        for index, name in enumerate(MODELS):
            with (logs(args) / f"serve_{name}.log").open("w") as log:  # the server keeps its own copy
                servers[name] = subprocess.Popen(serve_command(args, name, paths[name], ports[name]), stdout=log,
                                                 stderr=subprocess.STDOUT, env=on_gpu(args, index), cwd=ROOT)
        healthy_s = wait_all_healthy(servers, ports, logs(args))
        with ThreadPoolExecutor(2 * len(MODELS) + 2) as pool:
            evals = {(name, bench): pool.submit(eval_job, args, name, ports[name], bench)
                     for name in MODELS for bench in ("cruxeval-o", "heldout")}
            repairs = {patcher: pool.submit(repair_job, args, ports["sft"], patcher) for patcher in ("model", "both")}
            scores = {key: future.result() for key, future in evals.items()}
            outcomes = {key: future.result() for key, future in repairs.items()}
    finally:
        for server in servers.values():
            server.terminate()  # all at once: each takes seconds to free its GPU
        for server in servers.values():
            stop_server(server)
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


def bundle_dir(args: argparse.Namespace) -> Path:
    path = args.work / "bundle" / args.phase
    path.mkdir(parents=True, exist_ok=True)
    return path


def finish(args: argparse.Namespace, table: str) -> None:
    """The table, the logs and the small results as three files: a device call returns at most eight."""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.phase}_table.txt").write_text(table + "\n")
    with tarfile.open(args.out / f"{args.phase}_bundle.tgz", "w:gz") as tar:
        tar.add(bundle_dir(args), arcname=args.phase)
        tar.add(logs(args), arcname=f"{args.phase}/logs")
    print("\n" + table, flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        table = train(args) if args.phase == "train" else evaluate(args)
    except Exception:
        finish(args, f"{args.phase} failed; see the logs in {args.phase}_bundle.tgz")
        raise
    finish(args, table)


if __name__ == "__main__":
    main()
