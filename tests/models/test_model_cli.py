from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from importlib.util import find_spec
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SERVED_NAME
from openai_test_server import OpenAITestServer

from agent.model_cli import model_group
from agent.models import ModelError, ServeOptions, local_url, vllm_serve_command, wait_for_health

ROOT = Path(__file__).resolve().parents[2]


def test_serve_command_has_the_recommended_flags() -> None:
    options = ServeOptions(
        model="/ckpt", port=8100, max_model_len=4096, enforce_eager=True, extra=["--x", "1"]
    )
    assert vllm_serve_command(options, python="py") == [
        "py", "-m", "vllm.entrypoints.openai.api_server",
        "--model", "/ckpt",
        "--served-model-name", "/ckpt",
        "--host", "127.0.0.1",
        "--port", "8100",
        "--tensor-parallel-size", "1",
        "--gpu-memory-utilization", "0.9",
        "--dtype", "auto",
        "--seed", "0",
        "--generation-config", "vllm",
        "--disable-uvicorn-access-log",
        "--max-model-len", "4096",
        "--enforce-eager",
        "--x", "1",
    ]  # fmt: skip


def test_print_command_is_a_dry_run() -> None:
    result = CliRunner().invoke(
        model_group,
        ["serve", "semcoder/semcoder_s_1030", "-tp", "2", "--served-model-name", "semcoder", "--print-command",
         "--extra", "--max-num-seqs 512"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "-m vllm.entrypoints.openai.api_server --model semcoder/semcoder_s_1030" in result.output
    assert "--served-model-name semcoder" in result.output
    assert "--tensor-parallel-size 2" in result.output
    assert result.output.rstrip().endswith("--max-num-seqs 512")


@pytest.mark.skipif(find_spec("vllm") is not None, reason="vLLM is installed here")
def test_serve_without_vllm_says_so() -> None:
    result = CliRunner().invoke(model_group, ["serve", "some/model"])
    assert result.exit_code == 1
    assert "vLLM is not installed" in result.output


def test_local_url_reaches_a_wildcard_bind() -> None:
    assert local_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert local_url("10.0.0.2", 9) == "http://10.0.0.2:9"


def _python(code: str, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT)


def test_a_server_that_dies_shows_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    process = _python("import sys; print('CUDA out of memory', flush=True); sys.exit(3)", log)
    process.wait()
    with pytest.raises(ModelError, match=r"(?s)exited with code 3 .*CUDA out of memory"):
        wait_for_health(process, "http://127.0.0.1:9", log, timeout_s=30)


def test_waits_for_health_with_progress(openai_server: OpenAITestServer, tmp_path: Path) -> None:
    process = _python("import time; time.sleep(60)", tmp_path / "log")
    try:
        assert wait_for_health(process, openai_server.url, tmp_path / "log", timeout_s=10) < 10
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            nobody = f"http://127.0.0.1:{free.getsockname()[1]}"
        lines: list[str] = []
        with pytest.raises(ModelError, match="not healthy after 1 s"):
            wait_for_health(process, nobody, tmp_path / "log", timeout_s=1.2, progress=lines.append,
                            progress_every_s=0.5)  # fmt: skip
        assert lines and "waiting for" in lines[0]
    finally:
        process.kill()
        process.wait()


def test_check_lists_models_and_times_a_completion(openai_server: OpenAITestServer) -> None:
    result = CliRunner().invoke(model_group, ["check", openai_server.url, "--max-tokens", "4"])
    assert result.exit_code == 0, result.output
    assert f"models at {openai_server.url}/v1: {SERVED_NAME}" in result.output
    assert "latency:" in result.output and "tokens/s" in result.output
    assert openai_server.state.attempts == 1


def test_check_speaks_the_models_dialect(openai_server: OpenAITestServer) -> None:
    """`auto`: a model not named semcoder is checked on the chat route (rendered by its chat template), as a repair
    would prompt it; --dialect semcoder checks the completions route."""
    chat = CliRunner().invoke(model_group, ["check", openai_server.url, "--max-tokens", "4"])
    assert chat.exit_code == 0, chat.output
    assert "dialect: chat (/v1/chat/completions)" in chat.output
    assert [record.messages[0].content for record in openai_server.state.chats] == ["def fibonacci(n):\n"]
    raw = CliRunner().invoke(model_group, ["check", openai_server.url, "--max-tokens", "4", "--dialect", "semcoder"])
    assert raw.exit_code == 0, raw.output
    assert "dialect: semcoder (/v1/completions)" in raw.output and len(openai_server.state.chats) == 1


def test_check_reports_an_unreachable_server() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = CliRunner().invoke(model_group, ["check", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert "cannot list models" in result.output


def test_semcoder_entry_point_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    commands = project["project"]["entry-points"]["semcoder.commands"]
    assert commands["model"] == "agent.model_cli:model_group"
