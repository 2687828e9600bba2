"""The model layer: one generation Protocol, three backends (openai, vllm, transformers), typed config.

Importing this package (or one of its modules) is cheap: every name loads its module on first use, so
`semcoder eval --samples` and `semcoder trace-batch` never import openai, and torch, transformers and vLLM load
only when their backend is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# name -> the module that defines it (the one table: `__getattr__` and `__all__` read it)
_EXPORTS = {
    "Backend": "agent.models._config",
    "ModelConfig": "agent.models._config",
    "DIALECT_HELP": "agent.models._dialect",
    "Dialect": "agent.models._dialect",
    "Resolved": "agent.models._dialect",
    "other_dialect": "agent.models._dialect",
    "resolve_dialect": "agent.models._dialect",
    "route_of": "agent.models._dialect",
    "EndpointReport": "agent.models._endpoint",
    "check_endpoint": "agent.models._endpoint",
    "served_models": "agent.models._endpoint",
    "load_model": "agent.models._factory",
    "OpenAIGenerator": "agent.models._openai",
    "ServerLoad": "agent.models._openai",
    "ChatMessage": "agent.models._protocol",
    "Completion": "agent.models._protocol",
    "ContextWindowError": "agent.models._protocol",
    "EndpointError": "agent.models._protocol",
    "FinishReason": "agent.models._protocol",
    "GenerationRequest": "agent.models._protocol",
    "GenerationResult": "agent.models._protocol",
    "Generator": "agent.models._protocol",
    "ModelError": "agent.models._protocol",
    "SamplingParams": "agent.models._protocol",
    "Usage": "agent.models._protocol",
    "generate_sync": "agent.models._protocol",
    "total_usage": "agent.models._protocol",
    "ServeOptions": "agent.models._serve",
    "local_url": "agent.models._serve",
    "require_vllm": "agent.models._serve",
    "stop_server": "agent.models._serve",
    "vllm_serve_command": "agent.models._serve",
    "wait_for_health": "agent.models._serve",
    "MODEL_URL_HELP": "agent.models._urls",
    "ModelURLs": "agent.models._urls",
    "api_base": "agent.models._urls",
    "split_urls": "agent.models._urls",
    "TransformersGenerator": "agent.models._transformers",
    "VLLMGenerator": "agent.models._vllm",
}

if TYPE_CHECKING:  # what the table says, for type checkers and editors
    from agent.models._config import Backend as Backend
    from agent.models._config import ModelConfig as ModelConfig
    from agent.models._dialect import DIALECT_HELP as DIALECT_HELP
    from agent.models._dialect import Dialect as Dialect
    from agent.models._dialect import Resolved as Resolved
    from agent.models._dialect import other_dialect as other_dialect
    from agent.models._dialect import resolve_dialect as resolve_dialect
    from agent.models._dialect import route_of as route_of
    from agent.models._endpoint import EndpointReport as EndpointReport
    from agent.models._endpoint import check_endpoint as check_endpoint
    from agent.models._endpoint import served_models as served_models
    from agent.models._factory import load_model as load_model
    from agent.models._openai import OpenAIGenerator as OpenAIGenerator
    from agent.models._openai import ServerLoad as ServerLoad
    from agent.models._protocol import ChatMessage as ChatMessage
    from agent.models._protocol import Completion as Completion
    from agent.models._protocol import ContextWindowError as ContextWindowError
    from agent.models._protocol import EndpointError as EndpointError
    from agent.models._protocol import FinishReason as FinishReason
    from agent.models._protocol import GenerationRequest as GenerationRequest
    from agent.models._protocol import GenerationResult as GenerationResult
    from agent.models._protocol import Generator as Generator
    from agent.models._protocol import ModelError as ModelError
    from agent.models._protocol import SamplingParams as SamplingParams
    from agent.models._protocol import Usage as Usage
    from agent.models._protocol import generate_sync as generate_sync
    from agent.models._protocol import total_usage as total_usage
    from agent.models._serve import ServeOptions as ServeOptions
    from agent.models._serve import local_url as local_url
    from agent.models._serve import require_vllm as require_vllm
    from agent.models._serve import stop_server as stop_server
    from agent.models._serve import vllm_serve_command as vllm_serve_command
    from agent.models._serve import wait_for_health as wait_for_health
    from agent.models._transformers import TransformersGenerator as TransformersGenerator
    from agent.models._urls import MODEL_URL_HELP as MODEL_URL_HELP
    from agent.models._urls import ModelURLs as ModelURLs
    from agent.models._urls import api_base as api_base
    from agent.models._urls import split_urls as split_urls
    from agent.models._vllm import VLLMGenerator as VLLMGenerator


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agent.models' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


__all__ = sorted(_EXPORTS)
