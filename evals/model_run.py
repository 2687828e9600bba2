"""`semcoder eval BENCH --model URL`: generate, score, refine the failing tasks round by round, report.

Everything a round produces lands under the output directory before the next starts
(`generations.jsonl`, `round_K.json`), so a rerun skips the work already done. The report: `report.json` (pass@1
per round) and `tasks.jsonl` (each task's samples per round), as agent/eval_report.py describes them.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent import chat_prompts
from agent.completion import LoopModel, Model
from agent.eval_report import FailingInput, SampleOutcome, TaskOutcome, TaskRound
from agent.models import (
    EndpointReport,
    ModelConfig,
    OpenAIGenerator,
    SamplingParams,
    check_endpoint,
    load_model,
)
from agent.nodes import PoolTracer
from agent.refine import FailingTest, refine_once
from evals._config import EvalConfig
from evals._failing_test import assert_pairs, docstring_asserts, first_failing_tests
from evals._generate import CRUX_MODE, generate_missing, generation_prompt, generation_stop, problem_text
from evals._model_run_config import ModelRunConfig
from evals._progress import Progress
from evals._report import build_report
from evals._round_report import RoundScore, RunReport, write_report
from evals._samples import Sample
from evals.loaders import load_benchmark, load_humaneval
from evals.passk import mean_pass_at_k
from evals.scoring import open_runner, verdicts_for
from sandbox import JobRunner

REFINABLE = ("humaneval", "humaneval+", "mbpp", "mbpp+")
GENERATABLE = (*REFINABLE, *CRUX_MODE)
# The k the literature reports (each only where every task has >= k samples), and n itself: pass@n is the share of
# tasks any sample solves, the ceiling refinement can reach from these samples.
PASS_AT_K = (1, 5, 10, 20, 50, 100)
Programs = dict[str, list[str]]  # task_id -> one program per sample
Failing = dict[str, dict[int, FailingTest | None]]  # task_id -> sample index -> the test its refinement showed


def select_tasks(config: ModelRunConfig) -> list[Any]:
    tasks = load_benchmark(config.benchmark, config.data)
    if config.task_ids:
        known = {task.task_id for task in tasks}
        unknown = [t for t in config.task_ids if t not in known]
        if unknown:
            raise ValueError(f"unknown task ids for {config.benchmark}: {unknown[:3]}")
        tasks = [task for task in tasks if task.task_id in set(config.task_ids)]
    return tasks[: config.limit] if config.limit else tasks


def _score(config: ModelRunConfig, tasks: list[Any], programs: Programs, runner: JobRunner,
           eval_config: EvalConfig, show_progress: bool) -> tuple[float, dict[str, list[bool]], dict[str, list[str]]]:
    """pass@1, and per task each sample's verdict and why it failed."""
    samples = [Sample(task_id=task.task_id, text=text) for task in tasks for text in programs[task.task_id]]
    verdicts = verdicts_for(config.benchmark, tasks, samples, runner, eval_config, show_progress)
    passed: dict[str, list[bool]] = {task.task_id: [] for task in tasks}
    details: dict[str, list[str]] = {task.task_id: [] for task in tasks}
    for verdict in verdicts:
        passed[verdict.task_id].append(verdict.passed)
        details[verdict.task_id].append(verdict.detail)
    return build_report(config.benchmark, passed, verdicts).pass_at_1, passed, details


def _assert_pairs(config: ModelRunConfig, tasks: list[Any]) -> dict[str, list[FailingTest]]:
    if config.benchmark == "mbpp+":
        return {task.task_id: assert_pairs(docstring_asserts(task.prompt), task.entry_point) for task in tasks}
    sources = load_humaneval() if config.benchmark == "humaneval+" else tasks
    tests = {task.task_id: (task.test, task.entry_point) for task in sources}
    return {task.task_id: assert_pairs(*tests[task.task_id]) for task in tasks if task.task_id in tests}


def _refine_one(config: ModelRunConfig, model: Model, params: SamplingParams, task: Any, program: str,
                test: FailingTest | None, tracer: PoolTracer) -> str:
    """The refined program, or the old one when there is no test to show or no code in the answer."""
    if test is None:
        return program
    [candidate] = refine_once(problem_text(task), program, test, model, config.feedback, params, tracer=tracer,
                              dialect=config.prompt_dialect, system=config.system_prompt)
    return candidate.code if candidate.code is not None else program


def refine_round(config: ModelRunConfig, model: Model, tasks: list[Any], programs: Programs,
                 passed: dict[str, list[bool]], runner: JobRunner, show_progress: bool) -> tuple[Programs, int, Failing]:
    """One SemCoder round: every failing sample gets one failing test and one refinement; the rest stay.
    Also returns the failing test each refined sample was shown."""
    failing = [(task, index, program) for task in tasks
               for index, program in enumerate(programs[task.task_id]) if not passed[task.task_id][index]]
    tests = first_failing_tests([(task, program) for task, _, program in failing],
                                _assert_pairs(config, tasks), runner)
    params = SamplingParams(n=1, temperature=config.temperature, top_p=0.95, max_tokens=config.max_tokens)
    progress = Progress("refine", len(failing), enabled=show_progress)
    tracer = PoolTracer(runner)  # traces (feedback trace|blocks) run in the scoring sandbox, like the tests
    refined = {task_id: list(texts) for task_id, texts in programs.items()}
    shown: Failing = {}
    for (task, index, _), test in zip(failing, tests, strict=True):
        shown.setdefault(task.task_id, {})[index] = test

    def work(item: tuple[tuple[Any, int, str], FailingTest | None]) -> tuple[str, int, str]:
        (task, index, program), test = item
        return task.task_id, index, _refine_one(config, model, params, task, program, test, tracer)

    with ThreadPoolExecutor(config.refine_concurrency) as threads:
        for task_id, index, code in threads.map(work, zip(failing, tests, strict=True)):
            refined[task_id][index] = code
            progress.advance()
    return refined, len(failing), shown


def _load_round(path: Path, tasks: list[Any]) -> tuple[Programs, int, Failing] | None:
    """A saved round, or None when it was made for other tasks (a rerun with another --limit or --tasks)."""
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    if set(saved["programs"]) != {task.task_id for task in tasks}:
        return None
    shown = {task_id: {int(index): None if test is None else FailingTest(**test) for index, test in tests.items()}
             for task_id, tests in saved.get("failing_tests", {}).items()}  # absent in rounds of older versions
    return saved["programs"], saved["refined_samples"], shown


def _save_round(path: Path, programs: Programs, refined_samples: int, shown: Failing) -> None:
    partial = path.with_suffix(".tmp")
    tests = {task_id: {str(index): None if test is None else test.model_dump() for index, test in by_index.items()}
             for task_id, by_index in shown.items()}
    partial.write_text(json.dumps({"programs": programs, "refined_samples": refined_samples,
                                   "failing_tests": tests}))
    partial.replace(path)  # a crash never leaves a half-written round behind


def _round_score(number: int, pass_at_1: float, passed: dict[str, list[bool]], refined: int) -> RoundScore:
    solved = sum(all(flags) for flags in passed.values())
    counts = [(len(flags), sum(flags)) for flags in passed.values()]
    fewest = min((n for n, _ in counts), default=0)
    at_k = {k: score for k in sorted({*PASS_AT_K, fewest}) if k and (score := mean_pass_at_k(counts, k)) is not None}
    return RoundScore(round=number, pass_at_1=pass_at_1, pass_at_k=at_k, solved_tasks=solved,
                      refined_samples=refined)


def run_model_eval(config: ModelRunConfig, eval_config: EvalConfig | None = None,
                   show_progress: bool = True) -> RunReport:
    if config.benchmark not in GENERATABLE:
        raise ValueError(f"--model supports {', '.join(GENERATABLE)} only, not {config.benchmark}")
    if config.refine_rounds and config.benchmark not in REFINABLE:
        raise ValueError(f"--refine-rounds supports {', '.join(REFINABLE)} only, not {config.benchmark}")
    if config.system_prompt is not None and config.prompt_dialect == "semcoder":
        raise ValueError("--system-prompt-file replaces the chat dialect's system message; SemCoder's raw prompts "
                         f"have none ({config.model_name!r} is prompted with --dialect semcoder): pass --dialect chat")
    eval_config = eval_config or EvalConfig()
    tasks = select_tasks(config)
    check_model_endpoint(config, tasks, show_progress)  # before any work: the name, the route, the window
    config.out_dir.mkdir(parents=True, exist_ok=True)
    model = LoopModel(load_model(ModelConfig(backend="openai", model=config.model_name,
                                             model_url=config.model_url)))
    try:
        return _run(config, eval_config, tasks, model, show_progress)
    finally:
        model.close()


def check_model_endpoint(config: ModelRunConfig, tasks: list[Any], show_progress: bool = False) -> EndpointReport:
    """agent.models.check_endpoint with the longest generation prompt of the run (refinement prompts are longer by
    the program and the failed test, unknown before generation); raises EndpointError / ModelError."""
    dialect = config.prompt_dialect
    settings = ModelConfig(backend="openai", model=config.model_name, model_url=config.model_url)
    generator = OpenAIGenerator(config.model_name, settings.model_url, api_key=settings.api_key.get_secret_value(),
                                timeout_s=min(settings.timeout_s, 120.0), max_retries=settings.max_retries)
    prompts = [generation_prompt(config.benchmark, task, dialect, config.system_prompt) for task in tasks]
    longest = max(prompts, key=lambda p: len(p) if isinstance(p, str) else sum(len(m.content) for m in p), default=None)
    probe = None if longest is None else chat_prompts.request(longest, SamplingParams(max_tokens=1))
    report = check_endpoint(generator, dialect, probe, config.max_tokens, name_flag="--model-name NAME",
                            tokens_flag="--max-tokens", urls_flag="--model URL")
    if show_progress:
        print(f"model {config.model_name!r} at {generator.base_url}: --dialect {dialect}, {report.describe()}",
              file=sys.stderr)
    return report


def _run(config: ModelRunConfig, eval_config: EvalConfig, tasks: list[Any], model: Model,
         show_progress: bool) -> RunReport:
    dialect = config.prompt_dialect
    params = SamplingParams(n=config.n, temperature=config.temperature, top_p=0.95 if config.temperature else 1.0,
                            max_tokens=config.max_tokens, stop=generation_stop(config.benchmark, dialect))
    generated = generate_missing(config.benchmark, tasks, model, params, config.out_dir / "generations.jsonl",
                                 show_progress, dialect, config.system_prompt)
    programs: Programs = {task.task_id: generated[task.task_id].solutions for task in tasks}
    scored: list[tuple[Programs, dict[str, list[bool]], dict[str, list[str]]]] = []
    shown_by_round: list[Failing] = []  # shown_by_round[k]: the tests round k+1 showed for round k's programs
    with open_runner(eval_config) as runner:
        pass_at_1, passed, details = _score(config, tasks, programs, runner, eval_config, show_progress)
        scored.append((programs, passed, details))
        rounds = [_round_score(0, pass_at_1, passed, 0)]
        for number in range(1, config.refine_rounds + 1):
            path = config.out_dir / f"round_{number}.json"
            saved = _load_round(path, tasks)
            if saved is not None:
                programs, refined, shown = saved
            else:
                programs, refined, shown = refine_round(config, model, tasks, programs, passed, runner,
                                                        show_progress)
                _save_round(path, programs, refined, shown)
            shown_by_round.append(shown)
            pass_at_1, passed, details = _score(config, tasks, programs, runner, eval_config, show_progress)
            scored.append((programs, passed, details))
            rounds.append(_round_score(number, pass_at_1, passed, refined))
    report = RunReport(benchmark=config.benchmark, model=config.model_name, n_tasks=len(tasks),
                       n_samples_per_task=config.n, feedback=config.feedback, dialect=dialect, rounds=rounds)
    write_report(report, config.out_dir, task_outcomes(tasks, scored, shown_by_round))
    return report


def task_outcomes(tasks: list[Any], scored: list[tuple[Programs, dict[str, list[bool]], dict[str, list[str]]]],
                  shown_by_round: list[Failing]) -> list[TaskOutcome]:
    """tasks.jsonl: per task and round, each sample's program, verdict, and the failing test shown for it next."""
    def failing_input(number: int, task_id: str, index: int) -> FailingInput | None:
        if number >= len(shown_by_round):
            return None
        test = shown_by_round[number].get(task_id, {}).get(index)
        return None if test is None else FailingInput(call=test.call, expected=test.expected)

    return [TaskOutcome(task_id=task.task_id, rounds=[
        TaskRound(round=number, samples=[
            SampleOutcome(program=program, passed=passed[task.task_id][index], detail=details[task.task_id][index],
                          failing_input=failing_input(number, task.task_id, index))
            for index, program in enumerate(programs[task.task_id])])
        for number, (programs, passed, details) in enumerate(scored)]) for task in tasks]
