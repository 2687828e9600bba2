"""GPU check of the model layer: the `openai` and `vllm` backends against vLLM's own throughput.

Builds a ~100M-parameter random-init Llama (training/tiny_model.py, "gpu" preset), serves it with
`semcoder model serve` (python -m agent.model_cli serve), loads it in-process with vllm.LLM too, and runs the
same work through each path: PROMPTS SemCoder prompts (agent/prompts.py), n completions each, MAX_TOKENS new
tokens with ignore_eos so that every path generates exactly the same number of tokens.

Paths, each timed after a warm-up, best of the rounds that fit in the deadline:
- vllm.LLM.generate      vLLM's own in-process throughput: the reference (ratio 1.00)
- backend vllm           agent.models VLLMGenerator on the same engine
- http raw (httpx)       plain concurrent HTTP to the server: what the server itself delivers
- backend openai         agent.models OpenAIGenerator against the server (target: >= 0.80 of the reference)

Run with scripts/gpu_check.sh (vLLM on PYTHONPATH, see ../shared/gpu/README.md). Exit code 1 if the openai
backend misses its target.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import glob
import json
import os
import subprocess
import sys
import sysconfig
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent import prompts  # noqa: E402
from agent.models import (  # noqa: E402
    GenerationRequest,
    OpenAIGenerator,
    SamplingParams,
    VLLMGenerator,
    local_url,
    stop_server,
    total_usage,
    wait_for_health,
)
from training.tiny_model import BuiltModel  # noqa: E402

SERVED_NAME = "tiny-llama-gpu"
TARGET = 0.80
STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def stdlib_functions(limit: int, max_chars: int = 1200) -> list[str]:
    """Source of short top-level functions from the stdlib: realistic code for the prompts."""
    found: list[str] = []
    for path in sorted(glob.glob(os.path.join(sysconfig.get_paths()["stdlib"], "*.py"))):
        try:
            source = Path(path).read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                segment = ast.get_source_segment(source, node)
                if segment and 80 < len(segment) <= max_chars:
                    found.append(segment)
                    if len(found) == limit:
                        return found
    return found


def build_prompts(count: int) -> list[str]:
    """Forward, backward and NL-to-code prompts in turn, each rendered by agent.prompts."""
    functions = stdlib_functions(count)
    renderers: list[Callable[[str], str]] = [
        lambda code: prompts.forward_monologue_prompt(code, "1"),
        lambda code: prompts.backward_monologue_prompt(code, "None"),
        lambda code: prompts.nl2code_prompt(f"Rewrite this function more clearly:\n```python\n{code}\n```"),
    ]
    return [renderers[i % 3](functions[i % len(functions)]) for i in range(count)]


class Measurement:
    def __init__(self, name: str, requests: int, completions: int, tokens: int, seconds: float):
        self.name, self.requests, self.completions = name, requests, completions
        self.tokens, self.seconds = tokens, seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    def as_dict(self) -> dict[str, float | int | str]:
        return {**vars(self), "tokens_per_s": self.tokens_per_s}


def timed(name: str, run: Callable[[], tuple[int, int, int]]) -> Measurement | None:
    """One timed run; a path that fails is logged and left out, so the other paths still report."""
    started = time.perf_counter()
    try:
        requests, completions, tokens = run()
    except Exception:
        log(f"{name} FAILED:\n{traceback.format_exc()}")
        return None
    measurement = Measurement(name, requests, completions, tokens, time.perf_counter() - started)
    log(f"{name}: {tokens} tokens in {measurement.seconds:.2f} s = {measurement.tokens_per_s:,.0f} tokens/s")
    return measurement


def vllm_native(generator: VLLMGenerator, work: list[GenerationRequest]) -> tuple[int, int, int]:
    params = generator.sampling_params(work[0].params)
    outputs = generator.llm.generate([r.prompt for r in work], params, use_tqdm=False)
    completions = [c for o in outputs for c in o.outputs]
    return len(outputs), len(completions), sum(len(c.token_ids) for c in completions)


def through_backend(
    generator: VLLMGenerator | OpenAIGenerator, work: list[GenerationRequest]
) -> tuple[int, int, int]:
    async def run() -> list:
        try:
            return await generator.generate(work)
        finally:
            await generator.aclose()

    results = asyncio.run(run())
    return len(results), sum(len(r.completions) for r in results), total_usage(results).completion_tokens


def raw_http(url: str, work: list[GenerationRequest]) -> tuple[int, int, int]:
    """Every request at once over plain httpx: the server's throughput without our client."""

    async def run() -> list[dict]:
        limits = httpx.Limits(max_connections=len(work), max_keepalive_connections=len(work))
        async with httpx.AsyncClient(base_url=f"{url}/v1", timeout=600, limits=limits) as client:

            async def one(request: GenerationRequest) -> dict:
                p = request.params
                body = {
                    "model": SERVED_NAME, "prompt": request.prompt, "n": p.n, "max_tokens": p.max_tokens,
                    "temperature": p.temperature, "top_p": p.top_p, "ignore_eos": p.ignore_eos,
                }  # fmt: skip
                response = await client.post("/completions", json=body)
                response.raise_for_status()
                return response.json()

            return await asyncio.gather(*(one(r) for r in work))

    answers = asyncio.run(run())
    return (
        len(answers),
        sum(len(a["choices"]) for a in answers),
        sum(a["usage"]["completion_tokens"] for a in answers),
    )


def start_server(model: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    command = [
        sys.executable, "-m", "agent.model_cli", "serve", str(model),
        "--served-model-name", SERVED_NAME, "--port", str(args.port),
        "--gpu-memory-utilization", str(args.gpu_memory_utilization), "--max-model-len", "4096",
        "--dtype", "bfloat16", "--log-file", str(args.out / "server.log"), "--timeout", "480",
    ]  # fmt: skip
    if args.eager:
        command.append("--enforce-eager")
    log(f"starting: {' '.join(command)}")
    with (args.out / "serve-cli.log").open("wb") as cli_log:
        process = subprocess.Popen(command, stdout=cli_log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = local_url("127.0.0.1", args.port)
    seconds = wait_for_health(
        process, url, args.out / "server.log", timeout_s=480, progress=log, progress_every_s=20
    )
    log(f"server healthy after {seconds:.0f} s")
    return process, url


def table(best: dict[str, Measurement], reference: str) -> str:
    header = (
        f"{'backend':<24} {'requests':>8} {'completions':>11} {'output tokens':>13} {'seconds':>8} "
        f"{'tokens/s':>10} {'vs vLLM':>8}"
    )
    lines = [header, "-" * len(header)]
    base = best[reference].tokens_per_s if reference in best else float("nan")
    for m in best.values():
        lines.append(
            f"{m.name:<24} {m.requests:>8} {m.completions:>11} {m.tokens:>13} {m.seconds:>8.2f} "
            f"{m.tokens_per_s:>10,.0f} {m.tokens_per_s / base:>8.2f}"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu_check")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/semcoder-gpu-check"))
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--deadline-s", type=float, default=420, help="Start no round after this many seconds."
    )
    parser.add_argument(
        "--gpu-memory-utilization", type=float, default=0.8, help="For the engine of each phase."
    )
    parser.add_argument(
        "--phase", choices=["all", "in-process", "server"], default="all",
        help="Run one engine's paths only; a later phase adds to the measurements kept in --workdir.",
    )
    parser.add_argument("--eager", action=argparse.BooleanOptionalAction, default=True,
                        help="--enforce-eager for both engines (starts much faster; same for every path)")  # fmt: skip
    return parser.parse_args()


def build_model_in_subprocess(out_dir: Path) -> BuiltModel:
    """Build the checkpoint in a child process.

    Building it here would run torch's OpenMP pool and the tokenizers thread pool in this process; vLLM then
    forks its engine core from it, and the forked child deadlocked while loading the model.
    """
    command = [sys.executable, "-m", "training.tiny_model", str(out_dir), "--preset", "gpu"]
    subprocess.run(command, check=True, cwd=ROOT)
    config = json.loads((out_dir / "config.json").read_text())
    return BuiltModel(out_dir, parameter_count(config))


def parameter_count(config: dict) -> int:
    """Llama parameters from its config (untied embeddings), without loading torch here."""
    hidden, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    per_layer = attention + 3 * hidden * inter + 2 * hidden
    return layers * per_layer + 2 * config["vocab_size"] * hidden + hidden


def run_rounds(
    paths: dict[str, Callable[[list[GenerationRequest]], tuple[int, int, int]]],
    work: list[GenerationRequest],
    warmup: list[GenerationRequest],
    args: argparse.Namespace,
) -> list[Measurement]:
    for name, path in paths.items():
        timed(f"warm-up {name}", lambda path=path: path(warmup))
    measured: list[Measurement] = []
    for round_number in range(1, args.rounds + 1):
        if time.monotonic() - STARTED > args.deadline_s:
            log(f"deadline reached: stopping after {round_number - 1} rounds")
            break
        log(f"round {round_number}")
        runs = [timed(name, lambda path=path: path(work)) for name, path in paths.items()]
        measured += [m for m in runs if m is not None]
    return measured


def in_process_phase(model: Path, work, warmup, args: argparse.Namespace) -> list[Measurement]:
    in_process = VLLMGenerator(
        model, gpu_memory_utilization=args.gpu_memory_utilization, max_model_len=4096,
        dtype="bfloat16", enforce_eager=args.eager,
    )  # fmt: skip
    log("in-process engine ready")
    paths = {
        "vllm.LLM.generate": lambda w: vllm_native(in_process, w),
        "backend vllm": lambda w: through_backend(in_process, w),
    }
    return run_rounds(paths, work, warmup, args)


def server_phase(model: Path, work, warmup, args: argparse.Namespace) -> list[Measurement]:
    server, url = start_server(model, args)
    try:
        paths = {
            "http raw (httpx)": lambda w: raw_http(url, w),
            "backend openai": lambda w: through_backend(
                OpenAIGenerator(SERVED_NAME, url, concurrency=256, timeout_s=600), w
            ),
        }
        return run_rounds(paths, work, warmup, args)
    finally:
        log(f"stopping the server: exit code {stop_server(server)}")


def summarize(measured: list[Measurement], args: argparse.Namespace, parameters: int) -> int:
    best: dict[str, Measurement] = {}
    for m in measured:
        if m.name not in best or m.tokens_per_s > best[m.name].tokens_per_s:
            best[m.name] = m
    reference, candidate = best.get("vllm.LLM.generate"), best.get("backend openai")
    ratio = candidate.tokens_per_s / reference.tokens_per_s if reference and candidate else float("nan")
    verdict = "PASS" if ratio >= TARGET else ("FAIL" if ratio == ratio else "NOT MEASURED")
    summary = (
        f"{args.prompts} prompts x n={args.n}, {args.max_tokens} new tokens each (ignore_eos), "
        f"{parameters / 1e6:.0f}M-parameter Llama, bf16, eager={args.eager}; best of the rounds of each path\n"
        f"{table(best, 'vllm.LLM.generate')}\n"
        f"openai backend at {ratio:.2f} of vLLM in-process (target >= {TARGET:.2f}): {verdict}"
    )
    (args.out / "table.txt").write_text(summary + "\n")
    print("\n" + summary, flush=True)
    return 0 if verdict == "PASS" else 1


def main() -> int:
    """One engine at a time: two vLLM engines starting together on one GPU stalled the second one."""
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    built = build_model_in_subprocess(args.workdir / "model")
    log(f"built {built.path}: {built.parameters / 1e6:.1f}M parameters")
    params = SamplingParams(
        n=args.n, temperature=0.8, top_p=0.95, max_tokens=args.max_tokens, ignore_eos=True
    )
    work = [GenerationRequest(prompt=p, params=params) for p in build_prompts(args.prompts)]
    # The warm-up sees every prompt, so that each path meets the same prefix cache in every timed round.
    warmup = [
        GenerationRequest(prompt=r.prompt, params=params.model_copy(update={"max_tokens": 16})) for r in work
    ]
    # Phases may run in separate calls (each engine start takes minutes); results accumulate in the workdir.
    results = args.workdir / "measurements.json"
    measured = [Measurement(**{k: v for k, v in m.items() if k != "tokens_per_s"})
                for m in (json.loads(results.read_text()) if results.exists() and args.phase != "all" else [])]  # fmt: skip
    if args.phase in ("all", "in-process"):
        measured += in_process_phase(built.path, work, warmup, args)
    if args.phase in ("all", "server"):
        measured += server_phase(built.path, work, warmup, args)
    results.write_text(json.dumps([m.as_dict() for m in measured], indent=1))
    (args.out / "gpu_check.json").write_text(results.read_text())
    return summarize(measured, args, built.parameters)


if __name__ == "__main__":
    sys.exit(main())
