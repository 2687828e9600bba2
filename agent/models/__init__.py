"""The model layer: one generation Protocol, three backends (openai, vllm, transformers), typed config.

Importing this package is cheap: torch, transformers and vLLM load only when their backend is built.
"""

from agent.models._config import Backend, ModelConfig
from agent.models._dialect import DIALECT_HELP, Dialect, Resolved, other_dialect, resolve_dialect, route_of
from agent.models._endpoint import EndpointReport, check_endpoint, served_models
from agent.models._factory import load_model
from agent.models._openai import OpenAIGenerator, ServerLoad
from agent.models._protocol import (
    ChatMessage,
    Completion,
    ContextWindowError,
    EndpointError,
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
from agent.models._urls import MODEL_URL_HELP, ModelURLs, api_base, split_urls

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
    "DIALECT_HELP",
    "MODEL_URL_HELP",
    "Backend",
    "ChatMessage",
    "Completion",
    "ContextWindowError",
    "Dialect",
    "EndpointError",
    "EndpointReport",
    "FinishReason",
    "GenerationRequest",
    "GenerationResult",
    "Generator",
    "ModelConfig",
    "ModelError",
    "ModelURLs",
    "OpenAIGenerator",
    "Resolved",
    "SamplingParams",
    "ServeOptions",
    "ServerLoad",
    "TransformersGenerator",
    "Usage",
    "VLLMGenerator",
    "api_base",
    "check_endpoint",
    "generate_sync",
    "load_model",
    "local_url",
    "other_dialect",
    "require_vllm",
    "resolve_dialect",
    "route_of",
    "served_models",
    "split_urls",
    "stop_server",
    "total_usage",
    "vllm_serve_command",
    "wait_for_health",
]
