"""`semcoder model serve|check`: run a vLLM server for a checkpoint, and check any OpenAI-compatible endpoint."""

from __future__ import annotations

import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import FrameType

import click
import openai

from agent.models import (
    DIALECT_HELP,
    ChatMessage,
    GenerationRequest,
    ModelError,
    OpenAIGenerator,
    SamplingParams,
    ServeOptions,
    check_endpoint,
    generate_sync,
    local_url,
    require_vllm,
    resolve_dialect,
    route_of,
    split_urls,
    stop_server,
    vllm_serve_command,
    wait_for_health,
)


@click.group("model")
def model_group() -> None:
    """Serve a checkpoint with vLLM, or check an OpenAI-compatible endpoint."""


@model_group.command("serve")
@click.argument("model")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--served-model-name", default=None, help="Name clients ask for (default: MODEL).")
@click.option(
    "--tensor-parallel-size", "-tp", default=1, show_default=True, type=int, help="GPUs to shard over."
)
@click.option("--max-model-len", default=None, type=int, help="Context length cap (default: the model's).")
@click.option("--gpu-memory-utilization", default=0.9, show_default=True, type=float)
@click.option("--dtype", default="auto", show_default=True)
@click.option("--enforce-eager", is_flag=True, help="No CUDA graphs: faster start, slower decoding.")
@click.option("--extra", default="", help="More vLLM arguments as one shell-quoted string.")
@click.option("--timeout", "timeout_s", default=900.0, show_default=True, help="Seconds to wait for /health.")
@click.option(
    "--log-file", type=click.Path(path_type=Path), default=None, help="Server log (default: a temp file)."
)
@click.option("--print-command", is_flag=True, help="Print the server command and exit.")
def serve_command(
    model: str,
    timeout_s: float,
    log_file: Path | None,
    print_command: bool,
    extra: str,
    **settings: object,
) -> None:
    """Start vLLM's OpenAI-compatible server for MODEL, wait until healthy, then serve until stopped."""
    options = ServeOptions(model=model, extra=shlex.split(extra), **settings)
    command = vllm_serve_command(options)
    if print_command:
        click.echo(shlex.join(command))
        return
    try:
        require_vllm()
    except ModelError as error:
        raise click.ClickException(str(error)) from error
    log_path = log_file or Path(tempfile.gettempdir()) / f"semcoder-vllm-{options.port}.log"
    raise SystemExit(_run_server(command, options, log_path, timeout_s))


def _run_server(command: list[str], options: ServeOptions, log_path: Path, timeout_s: float) -> int:
    url = local_url(options.host, options.port)
    click.echo(f"starting: {shlex.join(command)}\nlog: {log_path}")
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # stop the server on SIGTERM too
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        elapsed = wait_for_health(process, url, log_path, timeout_s=timeout_s, progress=click.echo)
        click.echo(
            f"ready after {elapsed:.0f} s: {url}/v1 serves {options.served_model_name or options.model!r}"
        )
        return process.wait()
    except ModelError as error:
        raise click.ClickException(str(error)) from error
    except KeyboardInterrupt:
        click.echo("stopping the server")
        return 0
    finally:
        stop_server(process)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@model_group.command("check")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option("--model", default=None, help="Model to query (default: the first one the (first) server lists).")
@click.option("--prompt", default="def fibonacci(n):\n", show_default=True)
@click.option("--max-tokens", default=32, show_default=True, type=int)
@click.option(
    "--api-key", envvar="SEMCODER_API_KEY", default="EMPTY", help="Also read from SEMCODER_API_KEY."
)
@click.option("--timeout", "timeout_s", default=120.0, show_default=True, help="Seconds per request.")
@click.option("--dialect", type=click.Choice(["auto", "semcoder", "chat"]), default="auto", show_default=True,
              help=f"{DIALECT_HELP} The prompt is sent as the dialect sends it (chat: one user message).")
def check_command(
    urls: tuple[str, ...], model: str | None, prompt: str, max_tokens: int, api_key: str, timeout_s: float,
    dialect: str
) -> None:
    """List the models at URL, run one completion in the model's dialect, print its latency.

    Several URLs (or one with commas: several servers of the same model, as SEMCODER_MODEL_URL may list them): each
    is checked, and they must serve the same model with the same context window."""
    bases = split_urls(urls)
    listed: list[list[str]] = []
    for base in bases:
        try:
            models = [m.id for m in openai.OpenAI(base_url=base, api_key=api_key, timeout=timeout_s).models.list()]
        except openai.APIError as error:
            raise click.ClickException(f"cannot list models at {base}: {error}") from error
        click.echo(f"models at {base}: {', '.join(models) or '(none)'}")
        listed.append(models)
    if not (model or listed[0]):
        raise click.ClickException("the server lists no model; pass --model")
    chosen = model or listed[0][0]
    resolved = resolve_dialect(dialect, chosen)  # type: ignore[arg-type]
    click.echo(f"dialect: {resolved} ({route_of(resolved)})")
    if len(bases) > 1:  # the same model, route and window on every server, as a run's preflight checks
        generator = OpenAIGenerator(chosen, bases, api_key=api_key, timeout_s=timeout_s, max_retries=1)
        try:
            report = check_endpoint(generator, resolved, name_flag="--model NAME", urls_flag="the URLs")
        except ModelError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"{len(bases)} servers of {chosen!r}: {report.describe()}")
    params = SamplingParams(max_tokens=max_tokens)
    request = GenerationRequest(messages=[ChatMessage(role="user", content=prompt)], params=params) \
        if resolved == "chat" else GenerationRequest(prompt=prompt, params=params)
    for base in bases:
        _time_one(OpenAIGenerator(chosen, base, api_key=api_key, timeout_s=timeout_s, max_retries=1), request,
                  f" at {base}" if len(bases) > 1 else "")


def _time_one(generator: OpenAIGenerator, request: GenerationRequest, where: str) -> None:
    started = time.perf_counter()
    try:
        (result,) = generate_sync(generator, [request])
    except ModelError as error:
        raise click.ClickException(str(error)) from error
    latency = time.perf_counter() - started
    completion = result.completions[0]
    click.echo(f"completion from {generator.model!r}{where} ({completion.finish_reason}): {completion.text[:200]!r}")
    tokens = result.usage.completion_tokens
    click.echo(f"latency: {latency:.3f} s for {tokens} tokens ({tokens / latency:.1f} tokens/s)")


if __name__ == "__main__":
    model_group()
