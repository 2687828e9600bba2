"""Start vLLM's OpenAI-compatible server and wait until it is healthy (`semcoder model serve`)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import httpx
from pydantic import BaseModel, Field

from agent.models._protocol import ModelError


class ServeOptions(BaseModel):
    model: str = Field(description="Checkpoint path or hub id to serve.")
    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 for all).")
    port: int = Field(8000, ge=1, le=65535)
    served_model_name: str | None = Field(None, description="Name clients ask for (default: model).")
    tensor_parallel_size: int = Field(1, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    dtype: str = "auto"
    enforce_eager: bool = Field(False, description="No CUDA graphs: starts faster, decodes slower.")
    seed: int = 0
    extra: list[str] = Field(
        default_factory=list, description="More `vllm serve` arguments, passed as given."
    )


def vllm_serve_command(options: ServeOptions, python: str = sys.executable) -> list[str]:
    """The server command with the flags we recommend for SemCoder."""
    command = [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", options.model,
        "--served-model-name", options.served_model_name or options.model,
        "--host", options.host,
        "--port", str(options.port),
        "--tensor-parallel-size", str(options.tensor_parallel_size),
        "--gpu-memory-utilization", str(options.gpu_memory_utilization),
        "--dtype", options.dtype,
        "--seed", str(options.seed),
        # Sampling defaults must come from the request, never from the checkpoint's generation_config.json:
        # SemCoder's results depend on exact temperatures, and clients always send them.
        "--generation-config", "vllm",
        # One access-log line per request drowns the engine's own progress lines at batch scale.
        "--disable-uvicorn-access-log",
    ]  # fmt: skip
    if options.max_model_len is not None:
        command += ["--max-model-len", str(options.max_model_len)]
    if options.enforce_eager:
        command.append("--enforce-eager")
    return command + list(options.extra)


def local_url(host: str, port: int) -> str:
    """Where to reach a server bound to host:port from this machine."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"


def require_vllm() -> None:
    if find_spec("vllm") is None:
        raise ModelError(
            "vLLM is not installed in this Python: install it on the GPU machine (pip install "
            "'semcoder-agent[gpu]') or put it on PYTHONPATH; `--print-command` shows what would run"
        )


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_health(
    process: subprocess.Popen,
    url: str,
    log_path: Path,
    *,
    timeout_s: float,
    progress: Callable[[str], None] = print,
    progress_every_s: float = 10.0,
) -> float:
    """Poll `url`/health until it answers 200; seconds taken. Fails with the log's tail if the server dies."""
    started = time.monotonic()
    next_report = started + progress_every_s
    while True:
        elapsed = time.monotonic() - started
        if process.poll() is not None:
            raise ModelError(
                f"the server exited with code {process.returncode} after {elapsed:.0f} s, before it was healthy;"
                f" last lines of {log_path}:\n{log_tail(log_path)}"
            )
        if _healthy(url):
            return elapsed
        if elapsed > timeout_s:
            raise ModelError(
                f"the server was not healthy after {timeout_s:.0f} s; last lines of {log_path}:\n{log_tail(log_path)}"
            )
        if time.monotonic() >= next_report:
            progress(f"waiting for {url}/health: {elapsed:.0f} s (log: {log_path})")
            next_report += progress_every_s
        time.sleep(0.5)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def stop_server(process: subprocess.Popen, grace_s: float = 30.0) -> int:
    """SIGTERM, then SIGKILL after `grace_s`: vLLM frees the GPU on a clean shutdown."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
