"""Configuration in, backend out: the one place that knows every backend."""

from __future__ import annotations

from collections.abc import Callable

from agent.models._config import Backend, ModelConfig
from agent.models._protocol import Generator


def _openai(config: ModelConfig) -> Generator:
    from agent.models._openai import OpenAIGenerator

    return OpenAIGenerator(
        config.model,
        config.model_url,
        api_key=config.api_key.get_secret_value(),
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        concurrency=config.concurrency,
        stream=config.stream,
    )


def _vllm(config: ModelConfig) -> Generator:
    from agent.models._vllm import VLLMGenerator

    return VLLMGenerator(
        config.model,
        tensor_parallel_size=config.tensor_parallel_size,
        gpu_memory_utilization=config.gpu_memory_utilization,
        max_model_len=config.max_model_len,
        dtype=config.dtype,
        enforce_eager=config.enforce_eager,
        seed=config.seed,
    )


def _transformers(config: ModelConfig) -> Generator:
    from agent.models._transformers import TransformersGenerator

    return TransformersGenerator(
        config.model, device=config.device, dtype=config.dtype, batch_size=config.batch_size
    )


_BUILDERS: dict[Backend, Callable[[ModelConfig], Generator]] = {
    "openai": _openai,
    "vllm": _vllm,
    "transformers": _transformers,
}


def load_model(config: ModelConfig | None = None) -> Generator:
    """The backend that `config` names (default: from SEMCODER_* environment variables)."""
    config = config or ModelConfig()
    return _BUILDERS[config.backend](config)
