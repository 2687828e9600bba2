"""The model layer: one generation Protocol, three backends (openai, vllm, transformers), typed config.

Importing this package is cheap: torch, transformers and vLLM load only when their backend is built.
"""

from agent.models._config import Backend, ModelConfig
from agent.models._factory import load_model
from agent.models._openai import OpenAIGenerator, api_base
from agent.models._protocol import (
    Completion,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Generator,
    ModelError,
    SamplingParams,
    Usage,
    generate_sync,
    total_usage,
)
from agent.models._serve import (
    ServeOptions,
    local_url,
    require_vllm,
    stop_server,
    vllm_serve_command,
    wait_for_health,
)

# Backends with heavy imports resolve on first use: `from agent.models import TransformersGenerator`.
_LAZY = {
    "TransformersGenerator": "agent.models._transformers",
    "VLLMGenerator": "agent.models._vllm",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'agent.models' has no attribute {name!r}")


__all__ = [
    "Backend",
    "Completion",
    "FinishReason",
    "GenerationRequest",
    "GenerationResult",
    "Generator",
    "ModelConfig",
    "ModelError",
    "OpenAIGenerator",
    "SamplingParams",
    "ServeOptions",
    "TransformersGenerator",
    "Usage",
    "VLLMGenerator",
    "api_base",
    "generate_sync",
    "load_model",
    "local_url",
    "require_vllm",
    "stop_server",
    "total_usage",
    "vllm_serve_command",
    "wait_for_health",
]
