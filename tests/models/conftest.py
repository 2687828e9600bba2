"""Shared fixtures of the model-layer tests: one tiny real checkpoint, one backend, one HTTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_test_server import OpenAITestServer

from agent.models import TransformersGenerator
from training.tiny_model import build_tiny_model

SERVED_NAME = "tiny-llama"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama")).path


@pytest.fixture(scope="session")
def transformers_generator(tiny_model_dir: Path) -> TransformersGenerator:
    return TransformersGenerator(tiny_model_dir, device="cpu", batch_size=4)


@pytest.fixture(scope="session")
def _running_server(transformers_generator: TransformersGenerator) -> Iterator[OpenAITestServer]:
    # The checkpoint's own tokenizer renders chats by its chat template, as vLLM's chat route does.
    server = OpenAITestServer(transformers_generator, SERVED_NAME, tokenizer=transformers_generator.tokenizer).start()
    yield server
    server.stop()


@pytest.fixture
def openai_server(_running_server: OpenAITestServer) -> OpenAITestServer:
    """The session's server with its counters and injected faults cleared."""
    _running_server.state.reset()
    return _running_server
