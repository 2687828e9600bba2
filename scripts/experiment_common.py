"""The pieces the GPU experiments share (scripts/gpu_e2e.py, scripts/rationale_experiment.py): the small model's
sizes, pretraining, one SFT run, vLLM (or CPU) servers sharing GPUs, one `semcoder eval` against a server, and the
table + tarball a device call brings back.

Every function takes the script's parsed arguments; the fields it reads: work, out, phase, size, device, gpus,
server, pretrain_seconds, corpus_mb, max_tokens, workers, servers_per_gpu, kv_cache_gib.

On the GPU machine everything here needs the vLLM pack staged and `source scripts/gpu_env.sh` (pydantic, which
`semcoder train` and `semcoder data` import, comes with that pack: ../shared/gpu/README.md); `preflight` says so
before anything starts instead of failing in a child process minutes later.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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
# One optimizer step's packed rows: the SFT row budget both scripts size their runs with.
ROW_TOKENS = {"tiny": 512 * 2, "gpu": 2048 * 16}
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def preflight(args: argparse.Namespace, serve: bool) -> None:
    """On the GPU machine: fail at once, saying how to stage, when what the children import is missing."""
    if args.device != "cuda":
        return
    needed = ["pydantic", "transformers", *(["vllm"] if serve and args.server == "vllm" else [])]
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"missing on this machine: {', '.join(missing)}. Stage the vLLM pack first (../shared/gpu/README.md: "
            "`bash .gpu/vlN/stage.sh` for each part), then `export PYTHONPATH=/tmp/vllm-site:$PYTHONPATH && "
            "source scripts/gpu_env.sh` (carry .gpu/vl4 and .whl/gpu): `semcoder train`, `semcoder data` and "
            "`semcoder eval` import pydantic, which only that pack brings there")


def gpu_count(args: argparse.Namespace) -> int:
    if args.device == "cpu":
        return 1
    if args.gpus:
        return args.gpus
    import torch

    return max(1, torch.cuda.device_count())


def on_gpu(args: argparse.Namespace, index: int) -> dict[str, str]:
    env = {**os.environ, **NO_MULTICAST}
    if args.device == "cuda":
        env["CUDA_VISIBLE_DEVICES"] = str(index % gpu_count(args))
    else:
        # Several CPU runs at once: torch's default of one thread per core each makes them wait on each other.
        env.setdefault("OMP_NUM_THREADS", "1")
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


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


# --- training ------------------------------------------------------------------------------------------------


def pretrain(args: argparse.Namespace) -> dict[str, Any]:
    """The ~98M Llama from scratch on Python source under --pretrain-seconds; a finished run is kept."""
    summary = args.work / "pretrain" / "summary.json"
    if summary.exists() and (args.work / "pretrain" / "final" / "config.json").exists():
        print(f"pretraining already done ({summary}): kept", flush=True)
        return read_json(summary)
    sets = [
        *SIZES[args.size], *size_overrides(args),
        f"model={args.work / 'init'}", f"output_dir={args.work / 'pretrain'}",
        f"time_budget_s={args.pretrain_seconds}", "max_steps=1000000", "epochs=100", "learning_rate=8e-4",
        "warmup_steps=50", *([f"corpus_max_bytes={int(args.corpus_mb * 1e6)}"] if args.size == "gpu" else []),
    ]
    command = [*TRAIN, "pretrain", "--config", str(CONFIGS / "small-pretrain.yaml"), *as_sets(sets)]
    run_logged(command, logs(args) / "pretrain.log", on_gpu(args, 0))
    return read_json(summary)


def steps_for(args: argparse.Namespace, seconds: float, tokens_per_s: float) -> int:
    """Steps of the SFT row budget that fill `seconds` at the pretraining's measured speed (same model)."""
    return max(4, math.floor(seconds * tokens_per_s / ROW_TOKENS[args.size]))


def sft_run(args: argparse.Namespace, output: Path, data: list[Path], steps: int, gpu: int, log: Path,
            extra: list[str] = ()) -> dict[str, Any]:
    """One SFT run from the pretrained checkpoint for exactly `steps` steps; its summary.json."""
    sets = [
        *size_overrides(args),
        f"model={args.work / 'pretrain' / 'final'}", f"output_dir={output}",
        f"data={json.dumps([{'path': str(p)} for p in data])}", f"max_steps={steps}", "epochs=1000", *extra,
    ]
    command = [*TRAIN, "sft", "--config", str(CONFIGS / "small-sft.yaml"), *as_sets(sets)]
    run_logged(command, log, on_gpu(args, gpu))
    return read_json(output / "summary.json")


# --- serving and evaluation ----------------------------------------------------------------------------------


def serve_command(args: argparse.Namespace, name: str, path: Path, port: int, sharing: int) -> list[str]:
    """A server for one checkpoint; `sharing` servers run on its GPU at once.

    Each vLLM server gets an explicit share: a fixed KV cache (--kv-cache-memory-bytes, which also skips vLLM's
    memory profiling: servers that start together on one GPU would otherwise count each other's allocations as
    their own and size their caches wrong) and a utilization cap that only its start-up check reads. Eager mode
    (no torch.compile, no CUDA graphs) starts in seconds instead of compiling for minutes.
    """
    if args.server == "cpu":
        return [sys.executable, str(ROOT / "scripts" / "cpu_openai_server.py"), str(path), "--name", name,
                "--port", str(port)]
    utilization = round(min(0.3, 0.9 / max(1, sharing)), 3)
    kv_bytes = int(args.kv_cache_gib * 2**30)
    return [*SEMCODER, "model", "serve", str(path), "--served-model-name", name, "--port", str(port),
            "--gpu-memory-utilization", str(utilization), "--enforce-eager", "--max-model-len", "4096",
            "--extra", f"--kv-cache-memory-bytes {kv_bytes}"]


@contextmanager
def servers(args: argparse.Namespace, models: dict[str, Path], first_port: int) -> Iterator[tuple[dict[str, int], float]]:
    """Serves every model at once (spread over the GPUs, `sharing` per GPU); yields the ports and the seconds
    until all were healthy; stops them all on the way out."""
    from agent.models import stop_server  # pydantic: imported once the preflight has run

    gpus = gpu_count(args)
    sharing = math.ceil(len(models) / gpus)
    ports = {name: first_port + index for index, name in enumerate(models)}
    running: dict[str, subprocess.Popen] = {}
    try:
        for index, (name, path) in enumerate(models.items()):
            with (logs(args) / f"serve_{name}.log").open("w") as log:  # the server keeps its own copy
                running[name] = subprocess.Popen(serve_command(args, name, path, ports[name], sharing), stdout=log,
                                                 stderr=subprocess.STDOUT, env=on_gpu(args, index), cwd=ROOT)
        yield ports, wait_all_healthy(running, ports, logs(args))
    finally:
        for server in running.values():
            server.terminate()  # all at once: each takes seconds to free its GPU
        for server in running.values():
            stop_server(server)


def wait_all_healthy(running: dict[str, subprocess.Popen], ports: dict[str, int], log_dir: Path) -> float:
    """Seconds until every server answers /health (they start together, so the slowest decides)."""
    from agent.models import wait_for_health

    started = time.perf_counter()
    for name, server in running.items():
        wait_for_health(server, f"http://127.0.0.1:{ports[name]}", log_dir / f"serve_{name}.log", timeout_s=600)
        print(f"{name} healthy after {time.perf_counter() - started:.0f} s", flush=True)
    return time.perf_counter() - started


def eval_job(args: argparse.Namespace, name: str, port: int, benchmark: str, out: Path, data: Path | None,
             limit: int | None) -> dict[str, Any]:
    """`semcoder eval BENCHMARK` (cruxeval-i or cruxeval-o; `data`: another CRUXEval-format file) against the
    server of `name`; every per-task answer and verdict stays in `out` (tasks.jsonl, generations.jsonl)."""
    command = [
        *SEMCODER, "eval", benchmark, "--model", f"http://127.0.0.1:{port}/v1", "--model-name", name,
        "--dialect", "semcoder", "--max-tokens", str(args.max_tokens), "--out", str(out),
        "--workers", str(args.workers), "--json", "--quiet", *(["--limit", str(limit)] if limit else []),
        *(["--data", str(data)] if data else []),
    ]
    where = out.relative_to(args.work / "evals").parts if out.is_relative_to(args.work / "evals") else (out.name,)
    run_logged(command, logs(args) / f"eval_{'_'.join(where)}.log", dict(os.environ))
    report = read_json(out / "report.json")
    return {"pass_at_1": report["rounds"][0]["pass_at_1"], "tasks": report["n_tasks"]}


# --- output --------------------------------------------------------------------------------------------------


def bundle_dir(args: argparse.Namespace) -> Path:
    path = args.work / "bundle" / args.phase
    path.mkdir(parents=True, exist_ok=True)
    return path


def finish(args: argparse.Namespace, table: str, extra: list[tuple[Path, str]] = ()) -> None:
    """The table, and the logs with the small results as one tarball: a device call returns at most eight files.
    `extra`: more (path, name in the tarball) pairs."""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.phase}_table.txt").write_text(table + "\n")
    with tarfile.open(args.out / f"{args.phase}_bundle.tgz", "w:gz") as tar:
        tar.add(bundle_dir(args), arcname=args.phase)
        tar.add(logs(args), arcname=f"{args.phase}/logs")
        for path, arcname in extra:
            tar.add(path, arcname=arcname)
    print("\n" + table, flush=True)


def copy_into_bundle(args: argparse.Namespace, source: Path, name: str) -> None:
    shutil.copy(source, bundle_dir(args) / name)
