"""The optional teacher: any OpenAI-compatible completions endpoint, through the model layer.

It writes self-contained problems inspired by seed functions (OSS-Instruct), forward/backward
monologues (prompted exactly as SemCoder prompts them) and PyX-R rationales (the refine prompt).
Nothing it says is trusted: outputs are recomputed by execution and every monologue or fix is kept
only after `verify` checks it (rejection sampling over `samples` completions).
"""

from __future__ import annotations

import ast
import re

from pydantic import BaseModel, ConfigDict, Field

from agent.models import (
    MODEL_URL_HELP,
    GenerationRequest,
    Generator,
    ModelURLs,
    OpenAIGenerator,
    SamplingParams,
    generate_sync,
)
from agent.parsing import ParseError, extract_code_block
from agent.prompts import MONOLOGUE_STOP, backward_monologue_prompt, forward_monologue_prompt, refine_prompt
from training.data.corpus import doctest_inputs
from training.data.models import Origin, Program
from training.data.verify import MonologueTask

OSS_INSTRUCT = (
    "You are exceptionally skilled at crafting high-quality programming problems and offering precise solutions.\n"
    "Gain inspiration from the following random code snippet to create a self-contained programming problem "
    "whose solution is one Python function that takes and returns plain values (numbers, strings, lists, "
    "tuples, dicts) and has no side effects.\n\nCode snippet for inspiration:\n```python\n{seed}\n```\n\n"
    "Answer in exactly this format:\n[Problem]\n<the problem statement>\n[/Problem]\n[Solution]\n```python\n"
    "<the function>\n```\n[/Solution]\n[Tests]\nassert <function>(<arguments>) == <expected value>\n[/Tests]\n"
)


class TeacherConfig(BaseModel):
    """Which endpoint to ask and how to sample it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: ModelURLs = Field(description=f"The teacher's server, e.g. http://127.0.0.1:8000/v1. {MODEL_URL_HELP}")
    model: str = Field("teacher", description="Model name as the server knows it.")
    samples: int = Field(4, ge=1, description="Completions per monologue/rationale (rejection sampling).")
    temperature: float = Field(0.8, ge=0, description="Sampling temperature of monologues and rationales.")
    max_tokens: int = Field(1024, ge=16, description="Most new tokens per completion.")
    fallback_to_trace: bool = Field(True, description="When no sample verifies, use the trace-written version.")
    api_key: str = Field("EMPTY", description="API key for hosted endpoints.")


class Teacher:
    def __init__(self, config: TeacherConfig, generator: Generator | None = None) -> None:
        self.config = config
        self.generator = generator or OpenAIGenerator(config.model, config.url, api_key=config.api_key)

    def _ask(self, prompts: list[str], n: int, temperature: float, stop: tuple[str, ...] = ()) -> list[list[tuple[str, str]]]:
        params = SamplingParams(n=n, temperature=temperature, max_tokens=self.config.max_tokens, stop=stop)
        results = generate_sync(self.generator, [GenerationRequest(prompt=p, params=params) for p in prompts])
        return [[(c.text, c.finish_reason) for c in r.completions] for r in results]

    def inspire(self, seeds: list[Program]) -> list[Program | None]:
        """One problem + solution per seed (None where the answer could not be read)."""
        if not seeds:
            return []
        answers = self._ask([OSS_INSTRUCT.format(seed=s.code.strip()) for s in seeds], 1, 0.0)
        return [parse_problem(text, seed) for seed, ((text, _),) in zip(seeds, answers, strict=True)]

    def monologues(self, tasks: list[MonologueTask]) -> list[MonologueTask]:
        """Each task with the teacher's candidate responses (the stop tag put back)."""
        prompts = [forward_monologue_prompt(t.code.rstrip("\n"), t.example.input) if t.direction == "forward"
                   else backward_monologue_prompt(t.code.rstrip("\n"), t.example.output) for t in tasks]
        answers = self._ask(prompts, self.config.samples, self.config.temperature, (MONOLOGUE_STOP,))
        return [t.model_copy(update={"responses": [_closed(text, reason) for text, reason in samples]})
                for t, samples in zip(tasks, answers, strict=True)]

    def rationales(self, faults: list[tuple[str, str, str]]) -> list[list[str]]:
        """Candidate PyX-R responses for (problem, buggy code, failed test) triples."""
        prompts = [refine_prompt(problem, buggy, test) for problem, buggy, test in faults]
        answers = self._ask(prompts, self.config.samples, self.config.temperature)
        return [[text for text, _ in samples] for samples in answers]


def _closed(text: str, finish_reason: str) -> str:
    return text + MONOLOGUE_STOP if finish_reason == "stop" and MONOLOGUE_STOP not in text else text


def parse_problem(text: str, seed: Program) -> Program | None:
    problem = re.search(r"\[Problem\]\s*(.*?)\s*\[/Problem\]", text, re.DOTALL)
    solution = re.search(r"\[Solution\](.*?)\[/Solution\]", text, re.DOTALL)
    if not problem or not solution:
        return None
    code = extract_code_block(solution.group(1), finish_reason="stop")
    if isinstance(code, ParseError):
        return None
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    if not defined:
        return None
    tests = re.search(r"\[Tests\](.*?)(?:\[/Tests\]|$)", text, re.DOTALL)
    called = _called(tests.group(1) if tests else "", defined)
    entry = called or defined[0]
    inputs = doctest_inputs("\n".join(">>> " + line.removeprefix("assert").split("==")[0].strip()
                                      for line in (tests.group(1) if tests else "").splitlines() if line.strip()), entry)
    return Program(code=code.rstrip("\n") + "\n", entry=entry, description=problem.group(1).strip(),
                   origin=Origin(kind="teacher", ref=seed.origin.ref), inputs=inputs)


def _called(tests: str, defined: list[str]) -> str | None:
    for name in re.findall(r"assert\s+([A-Za-z_]\w*)\s*\(", tests):
        if name in defined:
            return name
    return None
