"""GPU check of the chat dialect (issue #16): an instruct model with a chat template behind vLLM's server, in one call.

Builds a ~100M-parameter random-init Llama whose tokenizer carries a ChatML chat template (training/tiny_model.py,
"gpu" preset: there are no weights and no hub on the GPU machine), serves it with `semcoder model serve` (vLLM's
OpenAI-compatible server, the template passed explicitly too), then:

1. endpoint checks against the real server (agent.models.check_endpoint): the chat route answers and vLLM reports
   max_model_len in /v1/models; an unknown model name and a prompt + budget past the window are refused;
2. throughput: the same PROMPTS chats (refine, NL-to-code and CRUXEval messages from agent/chat_prompts.py) sent
   through the `openai` backend both ways: as messages to /v1/chat/completions (vLLM renders the template) and as
   the template's own rendering to /v1/completions; n completions each, MAX_TOKENS new tokens with ignore_eos, so
   both generate exactly the same tokens from the same prompt tokens (the table shows both counts). Best of the
   rounds; the chat row's ratio to the completions row is printed;
3. `semcoder repair examples/inventory --dialect chat` (a random model fixes nothing: it must end cleanly,
   `not_fixed` at its iteration budget) and a short `semcoder eval humaneval --dialect chat --refine-rounds 1` and
   `cruxeval-o --dialect chat`, through the chat route.

A table is printed last (and written to OUT/table.txt). Exit code 1 if a step failed. Run it with
scripts/gpu_chat.sh (vLLM staged as ../shared/gpu/README.md says, `source scripts/gpu_env.sh` for the project's
dependencies). About 4-6 minutes on one H200, most of it the server's start. `--server cpu --preset test` runs the
same orchestration on a CPU against scripts/cpu_openai_server.py (a smoke test of this script, not a measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from gpu_check import log, parameter_count, stdlib_functions  # noqa: E402

from agent import chat_prompts  # noqa: E402
from agent.models import (  # noqa: E402
    ContextWindowError,
    EndpointError,
    GenerationRequest,
    OpenAIGenerator,
    SamplingParams,
    check_endpoint,
    local_url,
    stop_server,
    total_usage,
    wait_for_health,
)

SERVED_NAME = "tiny-instruct"
SEMCODER = [sys.executable, "-m", "agent.cli"]
STARTED_AT = time.monotonic()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "runs" / "gpu_chat")))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/semcoder-gpu-chat"))
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--port", type=int, default=8012)
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.8)
    parser.add_argument("--eval-limit", type=int, default=8, help="HumanEval tasks (and 2x that many CRUXEval-O)")
    parser.add_argument("--eager", action=argparse.BooleanOptionalAction, default=True,
                        help="--enforce-eager (starts much faster; the same for both routes)")
    parser.add_argument("--deadline-s", type=float, default=480, help="start no new step after this many seconds")
    parser.add_argument("--server", choices=["vllm", "cpu"], default="vllm")
    parser.add_argument("--preset", choices=["gpu", "test"], default="gpu", help="training/tiny_model.py's size")
    return parser.parse_args()


# --- the model and the server ------------------------------------------------------------------------------------


def build_model(out_dir: Path, preset: str) -> int:
    """In a child process: torch and tokenizers thread pools must not live in the process vLLM's client runs in."""
    if not (out_dir / "config.json").exists():
        subprocess.run([sys.executable, "-m", "training.tiny_model", str(out_dir), "--preset", preset],
                       check=True, cwd=ROOT)
    return parameter_count(json.loads((out_dir / "config.json").read_text()))


def template_file(model: Path, workdir: Path) -> Path:
    """The checkpoint's chat_template.jinja (transformers writes it beside the tokenizer); where a transformers
    version kept it inside tokenizer_config.json instead, the same template written out for --chat-template."""
    saved = model / "chat_template.jinja"
    if saved.exists():
        return saved
    from training.tiny_model import CHAT_TEMPLATE

    config = json.loads((model / "tokenizer_config.json").read_text())
    written = workdir / "chat_template.jinja"
    written.write_text(config.get("chat_template") or CHAT_TEMPLATE)
    return written


def start_server(model: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    command = [
        sys.executable, "-m", "agent.model_cli", "serve", str(model), "--served-model-name", SERVED_NAME,
        "--port", str(args.port),
        "--gpu-memory-utilization", str(args.gpu_memory_utilization), "--max-model-len", str(args.max_model_len),
        "--dtype", "bfloat16", "--log-file", str(args.out / "server.log"), "--timeout", "480",
        # the tokenizer carries the template already; naming it makes the chat route independent of how vLLM finds it
        "--extra", f"--chat-template {template_file(model, args.workdir)}",
    ]  # fmt: skip
    if args.eager:
        command.append("--enforce-eager")
    if args.server == "cpu":
        command = [sys.executable, "scripts/cpu_openai_server.py", str(model), "--name", SERVED_NAME,
                   "--port", str(args.port), "--max-model-len", str(args.max_model_len)]
    log(f"starting: {' '.join(command)}")
    with (args.out / "serve-cli.log").open("wb") as cli_log:
        process = subprocess.Popen(command, stdout=cli_log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = local_url("127.0.0.1", args.port)
    seconds = wait_for_health(process, url, args.out / ("server.log" if args.server == "vllm" else "serve-cli.log"),
                              timeout_s=480, progress=log,
                              progress_every_s=20)
    log(f"server healthy after {seconds:.0f} s")
    return process, url


# --- 1. endpoint checks ------------------------------------------------------------------------------------------------


def endpoint_checks(url: str, probe: chat_prompts.Messages, args: argparse.Namespace) -> list[tuple[str, bool, str]]:
    """(check, passed, detail) against the real vLLM server."""
    results: list[tuple[str, bool, str]] = []
    generator = OpenAIGenerator(SERVED_NAME, url, max_retries=1, timeout_s=60)
    request = chat_prompts.request(probe, SamplingParams())
    try:
        report = check_endpoint(generator, "chat", request, 512)
        results.append(("chat route + window reported", report.max_model_len == args.max_model_len,
                        report.describe()))
        raw = check_endpoint(generator, "semcoder", None, 512)
        results.append(("completions route", raw.prompt_tokens is not None, raw.describe()))
    except Exception as error:  # reported in the table
        results.append(("chat route + window reported", False, f"{type(error).__name__}: {error}"))
    for name, run in (
        ("unknown model refused", lambda: check_endpoint(OpenAIGenerator("no-such-model", url, max_retries=0),
                                                          "chat", request, 16)),
        ("prompt + budget past window refused", lambda: check_endpoint(generator, "chat", request,
                                                                        args.max_model_len)),
    ):
        try:
            run()
            results.append((name, False, "not refused"))
        except (EndpointError, ContextWindowError) as error:
            results.append((name, True, str(error)[:160]))
        except Exception as error:  # reported in the table
            results.append((name, False, f"{type(error).__name__}: {error}"[:160]))
    for name, passed, detail in results:
        log(f"check {name}: {'PASS' if passed else 'FAIL'} ({detail})")
    return results


# --- 2. throughput: the same prompts, both routes ---------------------------------------------------------------------


def build_chats(count: int) -> list[chat_prompts.Messages]:
    """Refine, NL-to-code and CRUXEval chats in turn, over short stdlib functions."""
    functions = stdlib_functions(count)
    makers: list[Callable[[str], chat_prompts.Messages]] = [
        lambda code: chat_prompts.refine_messages("Make the function correct.", code,
                                                  "retv = f(1)\nassert retv == None\n"),
        lambda code: chat_prompts.nl2code_messages(f"Rewrite this function more clearly:\n```python\n{code}\n```"),
        lambda code: chat_prompts.cruxeval_output_messages(code, "1"),
    ]
    return [makers[i % 3](functions[i % len(functions)]) for i in range(count)]


def rendered_prompts(model: Path, chats: list[chat_prompts.Messages]) -> list[str]:
    """Each chat as its template renders it, without the leading BOS text: /v1/completions adds BOS itself, so both
    routes prefill the same token ids."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    bos = tokenizer.bos_token or ""
    texts = []
    for chat in chats:
        text = tokenizer.apply_chat_template([m.model_dump() for m in chat], tokenize=False, add_generation_prompt=True)
        texts.append(text.removeprefix(bos))
    return texts


def through_openai(url: str, work: list[GenerationRequest]) -> tuple[int, int, int, int]:
    async def run() -> list:
        generator = OpenAIGenerator(SERVED_NAME, url, concurrency=256, timeout_s=600)
        try:
            return await generator.generate(work)
        finally:
            await generator.aclose()

    results = asyncio.run(run())
    usage = total_usage(results)
    return len(results), sum(len(r.completions) for r in results), usage.prompt_tokens, usage.completion_tokens


def throughput(url: str, model: Path, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    chats = build_chats(args.prompts)
    texts = rendered_prompts(model, chats)
    params = SamplingParams(n=args.n, temperature=0.8, top_p=0.95, max_tokens=args.max_tokens, ignore_eos=True)
    paths = {
        "completions (rendered)": [GenerationRequest(prompt=t, params=params) for t in texts],
        "chat (messages)": [GenerationRequest(messages=c, params=params) for c in chats],
    }
    warm = params.model_copy(update={"max_tokens": 16})
    for name, work in paths.items():  # every prompt once, so both meet the same prefix cache in the timed rounds
        through_openai(url, [r.model_copy(update={"params": warm}) for r in work])
        log(f"warm-up {name} done")
    best: dict[str, dict[str, Any]] = {}
    for number in range(1, args.rounds + 1):
        for name, work in paths.items():
            started = time.perf_counter()
            requests, completions, prompt_tokens, tokens = through_openai(url, work)
            seconds = time.perf_counter() - started
            row = {"name": name, "requests": requests, "completions": completions, "prompt_tokens": prompt_tokens,
                   "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}
            log(f"round {number} {name}: {tokens} tokens in {seconds:.2f} s = {row['tokens_per_s']:,.0f} tokens/s "
                f"({prompt_tokens} prompt tokens)")
            if name not in best or row["tokens_per_s"] > best[name]["tokens_per_s"]:
                best[name] = row
    return best


def throughput_table(best: dict[str, dict[str, Any]]) -> tuple[str, float]:
    header = (f"{'route':<24} {'requests':>8} {'completions':>11} {'prompt tok':>10} {'output tok':>10} "
              f"{'seconds':>8} {'tokens/s':>10} {'vs compl.':>9}")
    lines = [header, "-" * len(header)]
    base = best.get("completions (rendered)", {}).get("tokens_per_s", float("nan"))
    for row in best.values():
        lines.append(f"{row['name']:<24} {row['requests']:>8} {row['completions']:>11} {row['prompt_tokens']:>10} "
                     f"{row['tokens']:>10} {row['seconds']:>8.2f} {row['tokens_per_s']:>10,.0f} "
                     f"{row['tokens_per_s'] / base:>9.2f}")
    ratio = best["chat (messages)"]["tokens_per_s"] / base if "chat (messages)" in best else float("nan")
    return "\n".join(lines), ratio


# --- 3. repair and eval through the chat route ---------------------------------------------------------------------------


def run_logged(command: list[str], log_path: Path, env: dict[str, str], timeout_s: float) -> tuple[int, str, float]:
    log(f"$ {' '.join(command)}  (log: {log_path.name})")
    started = time.perf_counter()
    with log_path.open("w") as handle:
        try:
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=handle, env=env, cwd=ROOT, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return 124, "", time.perf_counter() - started
    return done.returncode, done.stdout, time.perf_counter() - started


def last_json(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def repair_step(url: str, args: argparse.Namespace) -> tuple[bool, str]:
    project = args.workdir / "inventory"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / "inventory", project)
    env = {**os.environ, "SEMCODER_MODEL_URL": f"{url}/v1"}
    command = [*SEMCODER, "repair", str(project), "--model", f"openai:{SERVED_NAME}", "--dialect", "chat",
               "--patcher", "model", "--samples", "2", "--max-iterations", "2", "--max-new-tokens", "128",
               "--max-time", "180", "--db", str(args.workdir / "repair.sqlite"), "--json"]
    code, stdout, seconds = run_logged(command, args.out / "repair.log", env, 240)
    outcome = last_json(stdout)
    status = outcome.get("status", "no report")
    passed = code in (0, 1) and status in ("fixed", "not_fixed")
    return passed, (f"exit {code}, {status} after {outcome.get('iterations', '?')} iterations in {seconds:.0f} s: "
                    f"{str(outcome.get('stop_reason', ''))[:90]}")


def eval_step(url: str, args: argparse.Namespace, benchmark: str, limit: int, *extra: str) -> tuple[bool, str]:
    out = args.workdir / f"eval_{benchmark}"
    shutil.rmtree(out, ignore_errors=True)
    command = [*SEMCODER, "eval", benchmark, "--model", f"{url}/v1", "--model-name", SERVED_NAME, "--dialect", "chat",
               "--limit", str(limit), "--max-tokens", "256", "--workers", "4", "--out", str(out), "--json", "--quiet",
               *extra]
    code, stdout, seconds = run_logged(command, args.out / f"eval_{benchmark}.log", dict(os.environ), 240)
    report = last_json(stdout)
    rounds = ", ".join(f"round {r['round']} {100 * r['pass_at_1']:.1f}%" for r in report.get("rounds", []))
    passed = code == 0 and report.get("dialect") == "chat"
    return passed, f"exit {code}, {report.get('n_tasks', '?')} tasks in {seconds:.0f} s, pass@1 {rounds or '-'}"


# --- all of it -------------------------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.workdir / f"model-{args.preset}"
    parameters = build_model(model, args.preset)
    log(f"built {model}: {parameters / 1e6:.1f}M parameters, chat template {template_file(model, args.workdir)}")
    steps: list[tuple[str, bool, str]] = []
    best: dict[str, dict[str, Any]] = {}
    server, url = start_server(model, args)
    try:
        steps += endpoint_checks(url, build_chats(3)[0], args)
        try:
            best = throughput(url, model, args)
        except Exception as error:  # reported in the table
            steps.append(("throughput", False, f"{type(error).__name__}: {error}"[:200]))
        for name, step in (
            ("repair examples/inventory (chat)", lambda: repair_step(url, args)),
            ("eval humaneval (chat, 1 refine round)",
             lambda: eval_step(url, args, "humaneval", args.eval_limit, "--refine-rounds", "1")),
            ("eval cruxeval-o (chat)", lambda: eval_step(url, args, "cruxeval-o", 2 * args.eval_limit)),
        ):
            if time.monotonic() - STARTED_AT > args.deadline_s:
                steps.append((name, False, f"skipped: past the {args.deadline_s:.0f} s deadline"))
                continue
            try:
                passed, detail = step()
            except Exception as error:  # reported in the table
                passed, detail = False, f"{type(error).__name__}: {error}"[:200]
            steps.append((name, passed, detail))
            log(f"{name}: {'PASS' if passed else 'FAIL'} ({detail})")
    finally:
        log(f"stopping the server: exit code {stop_server(server)}")
    return summarize(best, steps, parameters, args)


def summarize(best: dict[str, dict[str, Any]], steps: list[tuple[str, bool, str]], parameters: int,
              args: argparse.Namespace) -> int:
    server = f"vLLM server, bf16, eager={args.eager}" if args.server == "vllm" else "CPU stand-in server (smoke test)"
    lines = [f"{parameters / 1e6:.1f}M-parameter Llama with a ChatML chat template ({args.preset} preset), {server}, "
             f"openai backend; {args.prompts} prompts x n={args.n}, {args.max_tokens} new tokens each (ignore_eos), "
             f"best of {args.rounds} rounds"]
    ratio = float("nan")
    if len(best) == 2:
        table, ratio = throughput_table(best)
        same = best["chat (messages)"]["prompt_tokens"] == best["completions (rendered)"]["prompt_tokens"]
        lines += [table, f"chat / completions throughput: {ratio:.2f} (same prompt tokens both ways: {same})"]
        steps.append(("same prompt tokens both ways", same, ""))
    else:
        lines.append("throughput: not measured")
        steps.append(("throughput measured", False, ""))
    width = max(len(name) for name, _, _ in steps)
    lines += ["", *(f"{name:<{width}}  {'PASS' if ok else 'FAIL'}  {detail}" for name, ok, detail in steps)]
    summary = "\n".join(lines)
    (args.out / "table.txt").write_text(summary + "\n")
    (args.out / "gpu_chat.json").write_text(json.dumps({"throughput": best, "ratio": ratio,
                                                         "steps": [list(s) for s in steps]}, indent=1))
    print("\n" + summary, flush=True)
    return 0 if all(ok for _, ok, _ in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
