"""A local Hugging Face checkpoint on CPU or GPU (tests, small experiments, machines without vLLM)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agent.models._finish import cut_at_stop
from agent.models._protocol import (
    Completion,
    GenerationRequest,
    GenerationResult,
    ModelError,
    SamplingParams,
    Usage,
)


class TransformersGenerator:
    """Decodes with `model.generate`; requests with equal sampling parameters are batched together.

    A chat request is rendered by the tokenizer's chat template (with the generation prompt) and tokenized as is,
    without special tokens added on top (the template places BOS where the model wants it), as vLLM's chat route does.
    """

    def __init__(self, model: str | Path, *, device: str = "auto", dtype: str = "auto", batch_size: int = 8):
        import torch  # heavy: imported only when this backend is used
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.batch_size = batch_size
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model), padding_side="left")
            weights_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
            self.model = AutoModelForCausalLM.from_pretrained(str(model), dtype=weights_dtype)
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load a Hugging Face checkpoint from {model!r}: {error}") from error
        self.name = str(model)
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._lock = threading.Lock()  # one generate() at a time: the model is not re-entrant

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return await asyncio.to_thread(self.generate_blocking, requests)

    async def aclose(self) -> None:
        return None

    def generate_blocking(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results: list[GenerationResult | None] = [None] * len(requests)
        with self._lock:
            for (params, chat), indices in _batches(requests, self.batch_size):
                prompts = [self.render(requests[i]) for i in indices]
                outputs = self._generate_batch(prompts, params, add_special_tokens=not chat)
                for index, output in zip(indices, outputs, strict=True):
                    results[index] = output
        return [r for r in results if r is not None]

    def render(self, request: GenerationRequest) -> str:
        """The text the model continues: the raw prompt, or the chat rendered by the tokenizer's chat template."""
        if not request.is_chat:
            return request.prompt or ""
        return render_chat(self.tokenizer, request, self.name)

    def _generate_batch(self, prompts: list[str], params: SamplingParams, add_special_tokens: bool = True
                        ) -> list[GenerationResult]:
        torch = self._torch
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True,
                                 add_special_tokens=add_special_tokens).to(self.device)
        sampled = params.temperature > 0
        # Greedy decoding gives n equal completions (as in vLLM); HF refuses n > 1 without sampling.
        per_prompt = params.n if sampled else 1
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            output = self.model.generate(**encoded, **self._generate_kwargs(params, per_prompt))
        new_tokens = output[:, encoded["input_ids"].shape[1] :].tolist()
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        results = []
        for p, prompt_length in enumerate(prompt_lengths):
            rows = new_tokens[p * per_prompt : (p + 1) * per_prompt]
            completions, counts = zip(*(self._completion(row, params) for row in rows), strict=True)
            repeat = params.n // per_prompt
            results.append(
                GenerationResult(
                    completions=list(completions) * repeat,
                    usage=Usage(prompt_tokens=int(prompt_length), completion_tokens=sum(counts) * repeat),
                )
            )
        return results

    def _generate_kwargs(self, params: SamplingParams, per_prompt: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "num_return_sequences": per_prompt,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": params.temperature > 0,
        }
        if params.temperature > 0:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        if params.ignore_eos:
            kwargs["min_new_tokens"] = params.max_tokens
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        return kwargs

    def _completion(self, row: list[int], params: SamplingParams) -> tuple[Completion, int]:
        count, saw_eos = self._generated_length(row, params.ignore_eos)
        text = self.tokenizer.decode(row[:count], skip_special_tokens=True)
        text, stopped = cut_at_stop(text, params.stop)
        finish = "stop" if stopped or saw_eos else "length"
        return Completion(text=text, finish_reason=finish), count

    def _generated_length(self, row: list[int], ignore_eos: bool) -> tuple[int, bool]:
        """Tokens actually generated: up to and with EOS, or up to the padding after a stop string."""
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id
        for position, token in enumerate(row):
            if token == eos and not ignore_eos:
                return position + 1, True
            if token == pad and pad != eos:
                return position, False
        return len(row), False


def render_chat(tokenizer: Any, request: GenerationRequest, model: str) -> str:
    """A chat request as text, by the tokenizer's own chat template; ModelError where it has none."""
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(
            f"the tokenizer of {model} has no chat template, so chat messages cannot be rendered for it: pass "
            "--dialect semcoder (raw prompts), or use a checkpoint whose tokenizer_config.json or "
            "chat_template.jinja has one"
        )
    try:
        return tokenizer.apply_chat_template(request.chat(), tokenize=False, add_generation_prompt=True)
    except Exception as error:  # a template's own raise_exception(), a Jinja error
        raise ModelError(f"the chat template of {model} cannot render this chat: {error}") from error


def _batches(
    requests: Sequence[GenerationRequest], size: int
) -> Iterator[tuple[tuple[SamplingParams, bool], list[int]]]:
    """Indices of requests grouped by equal sampling parameters and kind (raw or chat), at most `size` a group."""
    groups: dict[tuple[SamplingParams, bool], list[int]] = {}
    for index, request in enumerate(requests):
        groups.setdefault((request.params, request.is_chat), []).append(index)
    for key, indices in groups.items():
        for start in range(0, len(indices), size):
            yield key, indices[start : start + size]
