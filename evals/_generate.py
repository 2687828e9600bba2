"""Generating solutions (or CRUXEval predictions) through the model layer, resumable: one JSONL line per task, written as it lands.

A rerun reads the file back and generates only the tasks it lacks, so a crash loses at most the batch
in flight. Each line keeps the raw completions and the sanitized programs the scorer runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from agent import chat_prompts
from agent.completion import Model
from agent.models import Resolved, SamplingParams
from agent.parsing import ParseError, cruxeval_prediction, extract_code_block
from agent.prompts import MONOLOGUE_STOP, cruxeval_input_prompt, cruxeval_output_prompt, nl2code_prompt
from evals._progress import Progress

# EvalPlus's instruction-model prompt; the answer opens the code fence so the model writes only code.
_INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"
    "```\n{prompt}\n```"
)
_RESPONSE_PREFIX = (
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding "
    "tests:\n```python\n"
)
CRUX_MODE = {"cruxeval-i": "input", "cruxeval-o": "output"}
BATCH = 64  # tasks per model call: many requests in flight, little lost on a crash


class GeneratedTask(BaseModel):
    """One task's samples: the raw completions and the programs taken from them (one each, same order)."""

    task_id: str
    raw: list[str]
    solutions: list[str]


def problem_text(task: Any) -> str:
    """The problem as the model sees it; MBPP (no prompt) gets EvalPlus's docstring of text and first test."""
    if task.prompt.strip():
        return task.prompt.strip()
    first_assert = next((line for line in task.test.splitlines() if line.startswith("assert")), "")
    return f'"""\n{task.description}\n{first_assert}\n"""'


def generation_prompt(benchmark: str, task: Any, dialect: Resolved = "semcoder",
                      system: str | None = None) -> chat_prompts.Prompt:
    """SemCoder's raw prompt, or the chat dialect's messages with the same content (`system` replaces theirs)."""
    if dialect == "chat":
        if benchmark == "cruxeval-o":
            return chat_prompts.cruxeval_output_messages(task.code, task.input, system=system)
        if benchmark == "cruxeval-i":
            return chat_prompts.cruxeval_input_messages(task.code, task.output, system=system)
        return chat_prompts.nl2code_messages(_INSTRUCTION.format(prompt=problem_text(task)), instruction="",
                                             system=system)
    if benchmark == "cruxeval-o":
        return cruxeval_output_prompt(task.code, task.input)
    if benchmark == "cruxeval-i":
        return cruxeval_input_prompt(task.code, task.output)
    return nl2code_prompt(_INSTRUCTION.format(prompt=problem_text(task)), _RESPONSE_PREFIX)


def generation_stop(benchmark: str, dialect: Resolved = "semcoder") -> tuple[str, ...]:
    """SemCoder's monologues stop at [/ANSWER]; a chat answer runs to its end (an instruct model may name the tag
    before its answer) and the parser takes the last [ANSWER]."""
    return (MONOLOGUE_STOP,) if benchmark in CRUX_MODE and dialect == "semcoder" else ()


def sanitize(benchmark: str, text: str, finish_reason: str | None, dialect: Resolved = "semcoder") -> str:
    """What the scorer runs: the fenced program, or CRUXEval's predicted call or value.

    An unparseable program is kept as is and an unparseable CRUXEval answer becomes "": both fail,
    as wrong answers should, and still count in n. SemCoder's prompt opened the code fence; a chat answer opens its own.
    """
    if benchmark in CRUX_MODE:
        prediction = cruxeval_prediction(text, CRUX_MODE[benchmark], finish_reason=finish_reason)
        return "" if isinstance(prediction, ParseError) else prediction
    code = extract_code_block(text, finish_reason=finish_reason or "stop", opened=dialect == "semcoder")
    return text if isinstance(code, ParseError) else code


def read_generated(path: Path) -> dict[str, GeneratedTask]:
    if not path.exists():
        return {}
    done = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = GeneratedTask.model_validate_json(line)
            done[row.task_id] = row
    return done


def generate_missing(benchmark: str, tasks: list[Any], model: Model, params: SamplingParams, path: Path,
                     show_progress: bool = True, dialect: Resolved = "semcoder",
                     system: str | None = None) -> dict[str, GeneratedTask]:
    """Generate the tasks `path` lacks, appending each batch as soon as it is back; return all rows."""
    done = read_generated(path)
    todo = [task for task in tasks if task.task_id not in done]
    progress = Progress("generate", len(todo), enabled=show_progress)
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        results = model.complete([chat_prompts.request(generation_prompt(benchmark, t, dialect, system), params)
                                  for t in batch])
        with path.open("a") as out:
            for task, result in zip(batch, results, strict=True):
                row = GeneratedTask(task_id=task.task_id, raw=[c.text for c in result.completions],
                                    solutions=[sanitize(benchmark, c.text, c.finish_reason, dialect)
                                               for c in result.completions])
                out.write(json.dumps(row.model_dump()) + "\n")
                done[task.task_id] = row
        progress.advance(len(batch))
    return done
