"""One round of SemCoder's iterative refinement, for benchmarks (evals/) and other callers.

The paper's protocol: per round, one failing test, no history; the caller tests the candidates and
retries only the tasks that still fail. `feedback_mode` adds the real trace of the failing call.
"""

from __future__ import annotations

from pydantic import BaseModel

from agent import chat_prompts
from agent.completion import Model
from agent.failing_test import FailedTest
from agent.feedback import build_refine_prompt, render_trace, test_block
from agent.models import Resolved, SamplingParams
from agent.nodes import Tracer
from agent.parsing import ParseError, parse_refined
from agent.state import FeedbackMode

PAPER_SAMPLING = SamplingParams(n=1, temperature=0.6, top_p=0.95, max_tokens=512)


class RefineCandidate(BaseModel):
    """One sampled answer: its refined code, or why none could be taken from it."""

    text: str
    finish_reason: str
    code: str | None = None
    error: str | None = None


class FailingTest(BaseModel):
    """The failed test as the paper shows it: `retv = <call>` / `assert retv == <expected>`."""

    call: str
    expected: str


def refine_once(problem: str, code: str, failing_test: FailingTest, model: Model,
                feedback_mode: FeedbackMode = "semcoder", params: SamplingParams = PAPER_SAMPLING,
                tracer: Tracer | None = None, *, dialect: Resolved = "semcoder",
                system: str | None = None) -> list[RefineCandidate]:
    """Prompt the model once (n = params.n samples) and parse each answer; no test is run here.

    `tracer` (the caller's sandbox, e.g. agent.nodes.PoolTracer(pool)) is needed for the trace feedback modes.
    `dialect` chat sends agent/chat_prompts.py's messages (`system` in place of their system message)."""
    failed = FailedTest(test_id="failed test", call=failing_test.call, expected=failing_test.expected)
    if tracer is None and feedback_mode != "semcoder":
        raise ValueError(f"feedback mode {feedback_mode!r} traces the code: pass the caller's tracer")
    trace = render_trace(tracer, feedback_mode, code, "solution.py", failed)  # type: ignore[arg-type]
    prompt: chat_prompts.Prompt = build_refine_prompt(problem, code, test_block(failed), trace, feedback_mode) \
        if dialect == "semcoder" else chat_prompts.refine_messages(problem, code, test_block(failed), trace,
                                                                  feedback_mode, system=system)
    [result] = model.complete([chat_prompts.request(prompt, params)])
    candidates = []
    for completion in result.completions:
        parsed = parse_refined(completion.text, finish_reason=completion.finish_reason)
        error = f"{parsed.problem}: {parsed.detail}" if isinstance(parsed, ParseError) else None
        candidates.append(RefineCandidate(text=completion.text, finish_reason=completion.finish_reason,
                                          code=None if error else parsed, error=error))  # type: ignore[arg-type]
    return candidates
