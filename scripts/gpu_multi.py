"""Several GPUs (issue #10) in one device call: FSDP scaling of the small model's SFT, then vLLM tensor parallel.

`scaling`: the small recipe's ~0.86B Llama (training/configs/small-pretrain.yaml's `init`, random weights: the
step costs the same) fine-tunes on PyX + PyX-R for --steps steps under `torchrun --nproc_per_node N` for N = 1,
2, 4 ... up to the GPUs present. Each process keeps the per-GPU work of the one-GPU run (the global batch grows
with N), so tokens/s should grow N-fold; scaling efficiency = tokens/s at N / (N x tokens/s at 1). N = 1 runs
without FSDP (what a one-GPU user runs) and, for the sharding cost alone, with it.

`tp`: `semcoder model serve --tensor-parallel-size N` serves a checkpoint over N GPUs and `semcoder eval
cruxeval-o` drives it through the `openai` backend; with the one-GPU report of scripts/gpu_e2e.py beside it
(same checkpoint, greedy), the two pass@1 figures should agree.

NVLink multicast stays off (NCCL_NVLS_ENABLE=0 and friends, set by scripts/gpu_env.sh and again here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIGS = ROOT / "training" / "configs"

from agent.models import stop_server, wait_for_health  # noqa: E402

SEMCODER = [sys.executable, "-m", "agent.cli"]
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phases", nargs="+", choices=["scaling", "tp"])
    parser.add_argument("--data", type=Path, required=True, help="a `semcoder data split` folder (train/)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "runs" / "gpu_multi")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/semcoder-multi"))
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per scaling run")
    parser.add_argument("--sizes", default=None, help="process counts, e.g. 1,2 (default: 1,2,4,.. up to the GPUs)")
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/semcoder-e2e/sft_mono/final"),
                        help="what `tp` serves (scripts/gpu_e2e.py's SFT model)")
    parser.add_argument("--tp-report", type=Path, default=Path("/tmp/semcoder-e2e/evals/sft_cruxeval-o/report.json"),
                        help="the one-GPU eval of the same checkpoint, to compare with")
    parser.add_argument("--tp", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model, gloo on CPU: checks the plumbing")
    return parser.parse_args(argv)


def env() -> dict[str, str]:
    return {**os.environ, **NO_MULTICAST}


def run_logged(command: list[str], log: Path, extra_env: dict[str, str] | None = None) -> int:
    print(f"$ {' '.join(command)}  (log: {log.name})", flush=True)
    with log.open("w") as handle:
        return subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
                              env={**env(), **(extra_env or {})}).returncode


def logs(args: argparse.Namespace) -> Path:
    path = args.work / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def tail(log: Path, lines: int = 25) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- scaling -------------------------------------------------------------------------------------------------


CPU_SMOKE = ["init.vocab_size=1024", "init.hidden_size=64", "init.intermediate_size=128", "init.num_hidden_layers=2",
             "init.num_attention_heads=4", "init.tokenizer_corpus_files=40", "pack_length=512", "max_length=512",
             "micro_batch_size=2", "precision=fp32", "peak_tflops=null", "device=cpu"]


def init_sets(args: argparse.Namespace) -> list[str]:
    """The small recipe's architecture, so every run builds (once) and loads the same random checkpoint."""
    import yaml

    init = yaml.safe_load((CONFIGS / "small-pretrain.yaml").read_text())["init"]
    return [f"init.{key}={value}" for key, value in init.items()] + (CPU_SMOKE if args.cpu_smoke else [])


def sft_run(args: argparse.Namespace, processes: int, fsdp: bool, compile_: bool) -> dict[str, Any]:
    name = f"n{processes}_{'fsdp' if fsdp else 'plain'}_{'compiled' if compile_ else 'eager'}"
    train = args.data / "train"
    sets = [
        *init_sets(args), f"model={args.work / 'init'}", f"output_dir={args.work / name}",
        f"data={json.dumps([{'path': str(train / 'pyx.jsonl')}, {'path': str(train / 'pyx_r.jsonl')}])}",
        f"max_steps={args.steps}", "epochs=100", "time_budget_s=null", "plot=false",
        f"distributed={'fsdp' if fsdp else 'none'}", f"compile={str(compile_ and not args.cpu_smoke).lower()}",
    ]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "training.train_cli", "sft", "--config", str(CONFIGS / "small-sft.yaml"),
               *[item for pair in sets for item in ("--set", pair)]]
    log = logs(args) / f"sft_{name}.log"
    code = run_logged(command, log, {"CUDA_VISIBLE_DEVICES": ",".join(map(str, range(processes)))})
    if code:
        print(f"{name} exited {code}:\n{tail(log)}", flush=True)
        return {"name": name, "error": f"exit {code}"}
    summary = json.loads((args.work / name / "summary.json").read_text())
    return {"name": name, "processes": processes, "fsdp": fsdp, "compile": compile_, **summary}


def sizes(args: argparse.Namespace) -> list[int]:
    if args.sizes or args.cpu_smoke:
        return [int(s) for s in (args.sizes or "1,2").split(",")]
    import torch

    gpus, n, out = torch.cuda.device_count(), 1, []
    while n <= gpus:
        out.append(n)
        n *= 2
    return out


def scaling(args: argparse.Namespace) -> str:
    compile_ = True
    runs = [sft_run(args, 1, False, compile_)]
    for n in sizes(args)[1:]:
        run = sft_run(args, n, True, compile_)
        if "error" in run and compile_:
            # torch.compile under FSDP2 is the newest path; the eager step still measures the scaling.
            print("FSDP run failed compiled: measuring every size eager instead", flush=True)
            compile_ = False
            runs = [sft_run(args, 1, False, False), sft_run(args, n, True, False)]
        else:
            runs.append(run)
    runs.append(sft_run(args, 1, True, compile_))  # the sharding machinery alone, on one GPU
    (logs(args) / "scaling.json").write_text(json.dumps(runs, indent=2))
    return scaling_table(runs)


def scaling_table(runs: list[dict[str, Any]]) -> str:
    base = next((r for r in runs if r.get("processes") == 1 and not r.get("fsdp")), None)
    lines = [f"{'run':<26} {'GPUs':>4} {'steps':>5} {'tokens/s':>10} {'per GPU':>9} {'MFU':>6} {'scaling':>8} "
             f"{'loss':>7}"]
    for r in runs:
        if "error" in r:
            lines.append(f"{r['name']:<26} failed: {r['error']}")
            continue
        n = r["processes"]
        eff = r["tokens_per_s"] / (n * base["tokens_per_s"]) if base else None
        mfu = "-" if r.get("mfu") is None else f"{r['mfu']:.1%}"
        lines.append(f"{r['name']:<26} {n:>4} {r['steps']:>5} {r['tokens_per_s']:>10,.0f} "
                     f"{r['tokens_per_s'] / n:>9,.0f} {mfu:>6} {'-' if eff is None else f'{eff:.1%}':>8} "
                     f"{r['final_loss']:>7.4f}")
    lines.append("scaling = tokens/s / (GPUs x tokens/s of n1_plain); the global batch grows with the GPUs")
    return "\n".join(lines)


# --- tensor parallel -----------------------------------------------------------------------------------------


def tensor_parallel(args: argparse.Namespace) -> str:
    if not (args.checkpoint / "config.json").exists():
        raise SystemExit(f"no checkpoint at {args.checkpoint}: run scripts/gpu_e2e.py train first")
    port = 8200
    command = [*SEMCODER, "model", "serve", str(args.checkpoint), "--served-model-name", "sft", "--port", str(port),
               "--tensor-parallel-size", str(args.tp), "--max-model-len", "4096"]
    log_path = logs(args) / "serve_tp.log"
    print(f"$ {' '.join(command)}", flush=True)
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env())
    try:
        healthy = wait_for_health(server, f"http://127.0.0.1:{port}", log_path, timeout_s=600)
        check = subprocess.run([*SEMCODER, "model", "check", f"http://127.0.0.1:{port}/v1", "--dialect", "semcoder"],
                               capture_output=True, text=True, cwd=ROOT, env=env())
        out = args.work / "tp_eval"
        started = time.perf_counter()
        code = run_logged([*SEMCODER, "eval", "cruxeval-o", "--model", f"http://127.0.0.1:{port}/v1", "--model-name",
                           "sft", "--dialect", "semcoder", "--max-tokens", str(args.max_tokens), "--out", str(out), "--workers", "8",
                           "--quiet"], logs(args) / "eval_tp.log")
        seconds = time.perf_counter() - started
    finally:
        stop_server(server, grace_s=60)
    if code:
        raise RuntimeError(f"eval through the TP server failed:\n{tail(logs(args) / 'eval_tp.log')}")
    tp_pass = json.loads((out / "report.json").read_text())["rounds"][0]["pass_at_1"]
    one = json.loads(args.tp_report.read_text())["rounds"][0]["pass_at_1"] if args.tp_report.exists() else None
    return "\n".join([
        f"vLLM tensor parallel {args.tp}: healthy after {healthy:.0f} s; `semcoder model check`: "
        f"{' | '.join(check.stdout.strip().splitlines()[-2:]) or check.stderr.strip()[-300:]}",
        f"CRUXEval-O (800) through the openai backend: pass@1 {100 * tp_pass:.2f}% at TP={args.tp} in {seconds:.0f} s"
        + ("" if one is None else f"; {100 * one:.2f}% at TP=1 (gpu_e2e, same checkpoint)"),
    ])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    tables = []
    for phase in args.phases:
        try:
            tables.append(scaling(args) if phase == "scaling" else tensor_parallel(args))
        except Exception as error:  # the other phase still runs and reports
            tables.append(f"{phase} failed: {type(error).__name__}: {error}")
        print("\n" + tables[-1], flush=True)
    (args.out / "multi_table.txt").write_text("\n\n".join(tables) + "\n")
    with tarfile.open(args.out / "multi_logs.tgz", "w:gz") as tar:  # a device call returns at most 8 files
        tar.add(logs(args), arcname="logs")
    print("\n" + "\n\n".join(tables), flush=True)


if __name__ == "__main__":
    main()
