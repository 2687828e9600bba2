"""The executability filter and input selection, both decided by running the programs in the sandbox.

A program is kept when its module loads, it never touches files, network or processes (the child's
audit hook), never reads the clock or a random source and never prints more than the executor's
`output_chars` (the child's profile function and capped output; any one call doing so drops the whole
program, so no record of any kind, NL-to-code included, is made from it), two runs under different hash
seeds agree on every call, and at least one input runs
cleanly to an output that round-trips through repr/literal_eval. Inputs are tried in two rounds:
generated candidates first, then EvalPlus-style mutants of the ones that worked. Inputs whose
behaviour (output and lines run) duplicates another's are dropped.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, Field

from training.data.executor import BatchExecutor, ExecItem, ItemRun
from training.data.inputs import candidates, mutate, param_kinds
from training.data.models import Example, Program

HASH_SEEDS = (1, 2)
_EFFECTS = ("side_effect", "clock", "randomness", "output_flood")  # each drops the whole program, by that name


class InputOptions(BaseModel):
    """How many inputs to try and keep per program."""

    generated: int = Field(8, ge=1, description="Random typed candidates in the first round.")
    mutants: int = Field(6, ge=0, description="Mutants of working inputs in the second round.")
    keep: int = Field(4, ge=1, description="Most examples kept per program (after behaviour dedupe).")
    max_input_chars: int = Field(200, gt=0, description="Longer argument lists are not used.")


class FilterOutcome(BaseModel):
    kept: list[Program]
    drops: Counter[str] = Field(default_factory=Counter)


def filter_programs(programs: Sequence[Program], executor: BatchExecutor, options: InputOptions,
                    seed: int) -> FilterOutcome:
    rng = random.Random(seed)
    drops: Counter[str] = Counter()
    first = [_with_candidates(p, rng, options) for p in programs]
    survivors = _round(first, executor, drops)
    second = [p.model_copy(update={"inputs": _mutants(p, rng, options)}) for p in survivors]
    refined = _round([p for p in second if p.inputs], executor, Counter(), keep_on_empty=True)
    by_key = {p.key: p for p in refined}
    kept = []
    for program in survivors:
        extra = by_key.get(program.key)
        examples = [*program.examples, *(extra.examples if extra else [])]
        kept.append(program.model_copy(update={"examples": select_examples(examples, options.keep)}))
    return FilterOutcome(kept=kept, drops=drops)


def _with_candidates(program: Program, rng: random.Random, options: InputOptions) -> Program:
    kinds = param_kinds(program.code, program.entry, program.param_types or None)
    generated = candidates(kinds, rng, options.generated) if kinds else []
    pool = [text for text in dict.fromkeys([*program.inputs, *generated]) if len(text) <= options.max_input_chars]
    return program.model_copy(update={"inputs": pool})


def _mutants(program: Program, rng: random.Random, options: InputOptions) -> list[str]:
    seen = {e.input for e in program.examples}
    found: list[str] = []
    for attempt in range(options.mutants * 3):
        if len(found) >= options.mutants:
            break
        base = program.examples[attempt % len(program.examples)].input
        text = mutate(base, rng)
        if text and text not in seen and len(text) <= options.max_input_chars:
            seen.add(text)
            found.append(text)
    return found


def _round(programs: list[Program], executor: BatchExecutor, drops: Counter[str],
           keep_on_empty: bool = False) -> list[Program]:
    items = [ExecItem(code=p.code, entry=p.entry, calls=p.inputs) for p in programs]
    results = executor.runs(items, HASH_SEEDS)
    kept = []
    for program, runs in zip(programs, results, strict=True):
        verdict = judge(runs)
        if verdict is not None and not (keep_on_empty and verdict.startswith("no_valid_input")):
            drops[verdict] += 1
            continue
        examples = [Example(input=text, output=call.output or "", lines=tuple(call.lines))
                    for text, call in zip(program.inputs, runs[0].calls, strict=True) if call.status == "ok"]
        if examples or not keep_on_empty:
            kept.append(program.model_copy(update={"examples": examples}))
    return kept


def judge(runs: list[ItemRun]) -> str | None:
    """Why a program is dropped (None: keep it), from its runs under different hash seeds."""
    first = runs[0]
    if not first.loaded:
        return f"load_{first.load.status}"
    statuses = Counter(call.status for run in runs for call in run.calls)
    for effect in _EFFECTS:  # before the seeds are compared: a clock read also makes the runs differ
        if statuses[effect]:
            return effect
    if any(run.load.status != first.load.status or run.signature() != first.signature() for run in runs[1:]):
        return "nondeterministic"
    statuses = Counter(call.status for call in first.calls)
    if statuses["crashed"]:
        return "crashed"
    if not statuses["ok"]:
        statuses.pop("skipped", None)  # calls skipped after a timeout say nothing of their own
        worst = statuses.most_common(1)[0][0] if statuses else "none"
        return f"no_valid_input_{worst}"
    return None


def select_examples(examples: list[Example], keep: int) -> list[Example]:
    """One example per behaviour (output and lines run), distinct outputs first, at most `keep`."""
    behaviours: dict[tuple[str, tuple[int, ...]], Example] = {}
    for example in examples:
        behaviours.setdefault((example.output, example.lines), example)
    unique = list(behaviours.values())
    seen_outputs: set[str] = set()
    first_pass, rest = [], []
    for example in unique:
        (rest if example.output in seen_outputs else first_pass).append(example)
        seen_outputs.add(example.output)
    return (first_pass + rest)[:keep]
