"""The transformers backend against a real (tiny, random-init) Llama checkpoint built by the tests."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from agent.models import (
    GenerationRequest,
    Generator,
    ModelConfig,
    ModelError,
    SamplingParams,
    TransformersGenerator,
    generate_sync,
    load_model,
)

PROMPT = "def add(a, b):\n"


def request(prompt: str = PROMPT, **params: object) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, params=SamplingParams(**params))


def test_is_a_generator(transformers_generator: TransformersGenerator) -> None:
    assert isinstance(transformers_generator, Generator)


def test_n_completions_with_length_finish_and_usage(
    transformers_generator: TransformersGenerator, tiny_model_dir: Path
) -> None:
    (result,) = generate_sync(
        transformers_generator, [request(n=3, temperature=1.0, max_tokens=12, ignore_eos=True, seed=1)]
    )
    assert len(result.completions) == 3
    assert all(c.finish_reason == "length" and c.text for c in result.completions)
    prompt_tokens = len(AutoTokenizer.from_pretrained(tiny_model_dir)(PROMPT)["input_ids"])
    assert result.usage.prompt_tokens == prompt_tokens
    assert result.usage.completion_tokens == 3 * 12


def test_results_keep_request_order_across_batches(transformers_generator: TransformersGenerator) -> None:
    greedy = [request(f"x{i} = {i}\n", max_tokens=4) for i in range(6)]
    mixed = [*greedy[:3], request(n=2, temperature=0.8, max_tokens=3, seed=0), *greedy[3:]]
    alone = [generate_sync(transformers_generator, [r])[0] for r in greedy]
    together = generate_sync(transformers_generator, mixed)
    assert [r.completions for r in together[:3] + together[4:]] == [r.completions for r in alone]
    assert len(together[3].completions) == 2


def test_greedy_n_gives_identical_completions(transformers_generator: TransformersGenerator) -> None:
    (result,) = generate_sync(transformers_generator, [request(n=2, max_tokens=6, ignore_eos=True)])
    first, second = result.completions
    assert first == second
    assert result.usage.completion_tokens == 12


def test_seed_makes_sampling_reproducible(transformers_generator: TransformersGenerator) -> None:
    def sample(seed: int) -> list[str]:
        (result,) = generate_sync(
            transformers_generator, [request(n=2, temperature=1.0, max_tokens=8, seed=seed)]
        )
        return [c.text for c in result.completions]

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_stop_string_cuts_the_text(transformers_generator: TransformersGenerator) -> None:
    (free,) = generate_sync(transformers_generator, [request(max_tokens=24, ignore_eos=True)])
    text = free.completions[0].text
    # A plain-letter string that the greedy continuation is known to produce (after its first tokens).
    stop = re.search(r"[a-z]{2}", text[4:]).group()
    (stopped,) = generate_sync(
        transformers_generator, [request(max_tokens=24, ignore_eos=True, stop=(stop,))]
    )
    completion = stopped.completions[0]
    assert completion.finish_reason == "stop"
    assert completion.text == text[: text.find(stop)]
    assert stopped.usage.completion_tokens < free.usage.completion_tokens


def test_async_generate_runs_off_the_event_loop(transformers_generator: TransformersGenerator) -> None:
    async def main() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        results = await transformers_generator.generate([request(max_tokens=16, ignore_eos=True)] * 4)
        task.cancel()
        return ticks, len(results)

    ticks, count = asyncio.run(main())
    assert count == 4
    assert ticks > 1  # the loop kept running while the model decoded


def test_generate_sync_refuses_a_running_loop(transformers_generator: TransformersGenerator) -> None:
    async def main() -> None:
        generate_sync(transformers_generator, [request(max_tokens=1)])

    with pytest.raises(ModelError, match="inside a running event loop"):
        asyncio.run(main())


def test_load_model_builds_the_transformers_backend(tiny_model_dir: Path) -> None:
    generator = load_model(ModelConfig(backend="transformers", model=str(tiny_model_dir), device="cpu"))
    assert isinstance(generator, TransformersGenerator)


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot load a Hugging Face checkpoint"):
        TransformersGenerator(tmp_path / "nothing", device="cpu")
