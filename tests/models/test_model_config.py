from __future__ import annotations

import subprocess
import sys
from importlib.util import find_spec

import pytest
from pydantic import ValidationError

from agent.models import GenerationRequest, ModelConfig, ModelError, SamplingParams, load_model


def test_defaults_point_at_a_local_vllm_server(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SEMCODER_BACKEND", "SEMCODER_MODEL", "SEMCODER_MODEL_URL"):
        monkeypatch.delenv(name, raising=False)
    config = ModelConfig()
    assert config.backend == "openai"
    assert config.model == "semcoder/semcoder_s_1030"
    assert config.model_url == "http://127.0.0.1:8000/v1"
    assert config.concurrency == 256


def test_environment_is_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMCODER_BACKEND", "transformers")
    monkeypatch.setenv("SEMCODER_API_KEY", "sk-secret")
    monkeypatch.setenv("SEMCODER_TIMEOUT_S", "2.5")
    config = ModelConfig()
    assert config.backend == "transformers" and config.timeout_s == 2.5
    assert "sk-secret" not in repr(config)
    monkeypatch.setenv("SEMCODER_BACKEND", "tgi")
    with pytest.raises(ValidationError, match="backend"):
        ModelConfig()


def test_every_field_is_documented() -> None:
    undocumented = [name for name, field in ModelConfig.model_fields.items() if not field.description]
    assert undocumented == []


@pytest.mark.skipif(find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="vLLM is not installed"):
        load_model(ModelConfig(backend="vllm", model="any"))


@pytest.mark.parametrize(
    "params",
    [{"n": 0}, {"temperature": -1.0}, {"top_p": 0.0}, {"max_tokens": 0}, {"stop": ("",)}, {"best_of": 2}],
)
def test_bad_sampling_params_are_rejected(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SamplingParams(**params)


def test_requests_are_hashable_values() -> None:
    a = GenerationRequest(prompt="p", params=SamplingParams(stop=("x",)))
    assert a == GenerationRequest(prompt="p", params=SamplingParams(stop=("x",)))
    assert hash(a.params) == hash(SamplingParams(stop=("x",)))


def test_importing_the_model_layer_stays_light() -> None:
    """The GPU machine and the agent import agent.models without torch/transformers/vLLM being loaded."""
    code = (
        "import sys, agent.models, agent.prompts, agent.parsing, agent.model_cli; "
        "print(sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
