"""In-process `vllm.LLM` for batch work on a GPU (optional: vLLM is imported only when this is used)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.models._finish import normalise_finish_reason
from agent.models._protocol import (
    Completion,
    GenerationRequest,
    GenerationResult,
    ModelError,
    SamplingParams,
    Usage,
)


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as error:
        raise ModelError(
            "vLLM is not installed: install it on a CUDA GPU machine (pip install 'semcoder-agent[gpu]'), "
            "or use the openai backend against a `semcoder model serve` server"
        ) from error
    return vllm


class VLLMGenerator:
    """All requests of one `generate` call go to the engine as one batch; vLLM schedules them.

    A chat request is rendered by the tokenizer's chat template and sent as token ids, without special tokens added
    on top (as vLLM's own chat route does), so raw prompts and chats mix in one batch.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
        enforce_eager: bool = False,
        seed: int = 0,
    ):
        self._vllm = import_vllm()
        self.llm = self._vllm.LLM(
            model=str(model),
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            enforce_eager=enforce_eager,
            seed=seed,
            # Sampling defaults come from our SamplingParams, not from the checkpoint's generation_config.
            generation_config="vllm",
        )
        self.name = str(model)
        self._lock = threading.Lock()  # the engine serves one generate() at a time

    def sampling_params(self, params: SamplingParams) -> Any:
        return self._vllm.SamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            stop=list(params.stop) or None,
            seed=params.seed,
            ignore_eos=params.ignore_eos,
        )

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return await asyncio.to_thread(self.generate_blocking, requests)

    async def aclose(self) -> None:
        return None

    def generate_blocking(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if not requests:
            return []
        prompts = [self.engine_prompt(r) for r in requests]
        params = [self.sampling_params(r.params) for r in requests]
        with self._lock:
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
        return [_result(output) for output in outputs]

    def engine_prompt(self, request: GenerationRequest) -> Any:
        """A raw prompt as text (the engine adds BOS), a chat as its template's token ids (the template has it)."""
        if not request.is_chat:
            return request.prompt
        from agent.models._transformers import render_chat

        tokenizer = self.llm.get_tokenizer()
        text = render_chat(tokenizer, request, self.name)
        return {"prompt_token_ids": tokenizer.encode(text, add_special_tokens=False)}


def _result(output: Any) -> GenerationResult:
    choices = sorted(output.outputs, key=lambda c: c.index)
    return GenerationResult(
        completions=[
            Completion(text=c.text, finish_reason=normalise_finish_reason(c.finish_reason)) for c in choices
        ],
        usage=Usage(
            prompt_tokens=len(output.prompt_token_ids or ()),
            completion_tokens=sum(len(c.token_ids) for c in choices),
        ),
    )
