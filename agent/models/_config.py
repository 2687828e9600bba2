"""Typed model configuration, read from SEMCODER_* environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.models._urls import MODEL_URL_HELP, ModelURLs, split_urls

Backend = Literal["openai", "vllm", "transformers"]


class ModelConfig(BaseSettings):
    """Which model to talk to and how. Every field can be set as SEMCODER_<FIELD> (e.g. SEMCODER_MODEL_URL)."""

    model_config = SettingsConfigDict(env_prefix="SEMCODER_", extra="ignore", protected_namespaces=())

    backend: Backend = Field(
        "openai",
        description="openai: any OpenAI-compatible server (vllm serve, hosted APIs); vllm: in-process "
        "vllm.LLM on a GPU; transformers: a local Hugging Face checkpoint on CPU or GPU.",
    )
    model: str = Field(
        "semcoder/semcoder_s_1030",
        description="Model name as the server knows it (openai) or a checkpoint path / hub id (vllm, transformers).",
    )
    model_url: ModelURLs = Field(
        "http://127.0.0.1:8000/v1",
        description=f"openai backend: {MODEL_URL_HELP}",
    )
    api_key: SecretStr = Field(
        SecretStr("EMPTY"),
        description="API key for the openai backend (vLLM accepts any unless --api-key is set).",
    )
    timeout_s: float = Field(
        600.0, gt=0, description="Per-request timeout of the openai backend, in seconds."
    )
    max_retries: int = Field(
        4,
        ge=0,
        description="Retries of the openai backend on transient errors (connection, 408, 409, 429, 5xx).",
    )
    concurrency: int = Field(
        256,
        ge=1,
        description="Requests the openai backend keeps in flight at once; high, so the server can batch them.",
    )
    stream: bool = Field(
        False, description="Stream completions over SSE (openai backend); useful for very long generations."
    )
    device: str = Field("auto", description="transformers backend: 'cpu', 'cuda', 'cuda:1' or 'auto'.")
    dtype: str = Field("auto", description="Weights dtype: 'auto', 'float32', 'bfloat16' or 'float16'.")
    batch_size: int = Field(8, ge=1, description="transformers backend: prompts decoded together.")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm backend: GPUs to shard the model over.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="vllm backend: fraction of GPU memory the engine may take."
    )
    max_model_len: int | None = Field(
        None, ge=1, description="vllm backend: context length cap (None: model's)."
    )
    enforce_eager: bool = Field(
        False, description="vllm backend: skip CUDA graphs (faster start, slower decode)."
    )
    seed: int = Field(0, description="vllm backend: engine seed (per-request seeds go in SamplingParams).")

    @property
    def model_urls(self) -> tuple[str, ...]:
        """Each server's API base, in the order given."""
        return split_urls(self.model_url)
