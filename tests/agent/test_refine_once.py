"""refine_once: one paper-style round, the prompt byte-exact and each answer parsed (errors as data)."""

from __future__ import annotations

import pytest
from agent_helpers import ScriptedModel, refined

from agent.models import SamplingParams
from agent.nodes import PoolTracer
from agent.prompts import failed_test, refine_prompt
from agent.refine import FailingTest, refine_once

CODE = "def add(a, b):\n    return a - b"


def test_semcoder_round_is_the_papers_prompt():
    model = ScriptedModel([[refined("def add(a, b):\n    return a + b"), "I give up"]])
    candidates = refine_once("Add two numbers.", CODE, FailingTest(call="add(1, 2)", expected="3"), model,
                             params=SamplingParams(n=2))
    assert model.prompts == [refine_prompt("Add two numbers.", CODE, failed_test("add(1, 2)", "3"))]
    assert candidates[0].code == "def add(a, b):\n    return a + b" and candidates[0].error is None
    assert candidates[1].code is None and "no ``` code block" in candidates[1].error


def test_trace_round_annotates_the_code_with_the_real_run(pool):
    model = ScriptedModel([["..."]])
    refine_once("Add two numbers.", CODE, FailingTest(call="add(1, 2)", expected="3"), model, "trace",
                tracer=PoolTracer(pool))
    assert '# [INPUT] {"a": 1, "b": 2} [/INPUT]' in model.prompts[0]
    assert "[OUTPUT] -1 [/OUTPUT]" in model.prompts[0]


def test_a_trace_round_needs_the_callers_sandbox():
    with pytest.raises(ValueError, match="pass the caller's tracer"):
        refine_once("Add two numbers.", CODE, FailingTest(call="add(1, 2)", expected="3"), ScriptedModel([]), "trace")
