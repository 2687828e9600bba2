"""`semcoder repair` and `semcoder runs`: the repair loop on your own failing tests, headless and resumable."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from agent.diff import ApplyError, apply_files, unified_diff
from agent.environment import detect as detect_environment
from agent.graph import build_graph, initial_state, open_deps, run_values, thread_config
from agent.persistence import RunStore, load_task, open_store
from agent.state import Attempt, RunConfig
from agent.tasks import Task, TaskError, function_task, project_task, with_targets
from sandbox import RESERVED_ENV, SandboxError

_EXIT = {"fixed": 0, "not_fixed": 1, "error": 2}


class RepairOutcome(dict):
    """The one object `--json` prints."""

    @classmethod
    def of(cls, status: str, run_id: str = "", iterations: int = 0, diff: str = "", passed: int = 0,
           total: int = 0, stop_reason: str = "", confirmation: str = "",
           rejected: list[dict[str, Any]] | None = None, isolation: dict[str, Any] | None = None,
           notes: list[str] | None = None) -> RepairOutcome:
        return cls(status=status, run_id=run_id, iterations=iterations, diff=diff, tests_passed=passed,
                   tests_total=total, stop_reason=stop_reason, confirmation=confirmation, rejected=rejected or [],
                   isolation=isolation or {}, notes=notes or [])


@click.command("repair", context_settings={"ignore_unknown_options": True})
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--tests", "tests", type=click.Path(path_type=Path),
              help="Function-level: the pytest file that imports PATH by its file stem.")
@click.option("--model", default="none", show_default=True,
              help="'none' (mutation engine only) or BACKEND:NAME, e.g. openai:semcoder_s_1030.")
@click.option("--patcher", type=click.Choice(["model", "mutation", "both"]), default=None,
              help="Patch source (default: mutation without a model, both with one).")
@click.option("--feedback", type=click.Choice(["semcoder", "trace", "blocks"]), default="semcoder",
              show_default=True, help="What the model sees of the failing test.")
@click.option("--max-iterations", type=int, default=8, show_default=True)
@click.option("--max-tokens", type=int, default=200_000, show_default=True)
@click.option("--max-time", type=float, default=600.0, show_default=True, help="Seconds.")
@click.option("--samples", type=int, default=4, show_default=True, help="Model completions per step.")
@click.option("--mutants-per-step", type=int, default=12, show_default=True)
@click.option("--max-new-tokens", type=int, default=512, show_default=True, help="Per completion.")
@click.option("--temperature", type=float, default=0.6, show_default=True)
@click.option("--db", type=click.Path(path_type=Path), default=None,
              help="Run database (default: ~/.cache/semcoder/runs.sqlite).")
@click.option("--resume", "resume_id", default=None, help="Continue the run with this id.")
@click.option("--apply", "apply_fix", is_flag=True, help="Write the diff into the files (default: only print it).")
@click.option("--python", "python", default=None, metavar="PATH",
              help="The project's interpreter or venv (default: $VIRTUAL_ENV, .venv/, venv/, env/, poetry's, "
                   "else semcoder's own).")
@click.option("--env", "env", multiple=True, metavar="NAME=VALUE",
              help=f"{Task.model_fields['env'].description} Repeatable.")
@click.option("--allow-suspicious", is_flag=True, help=RunConfig.model_fields["allow_suspicious"].description)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the report.")
def repair_command(path: Path | None, pytest_args: tuple[str, ...], tests: Path | None, model: str, patcher: str | None, feedback: str,
                   max_iterations: int, max_tokens: int, max_time: float, samples: int, mutants_per_step: int,
                   max_new_tokens: int, temperature: float, db: Path | None, resume_id: str | None, apply_fix: bool,
                   python: str | None, env: tuple[str, ...], allow_suspicious: bool, as_json: bool) -> None:
    """Repair PATH until its tests pass: a FILE.py with --tests TEST_FILE.py, or a project DIR.

    Anything after `--` goes to pytest as the test selection (node ids, paths, -k EXPR), e.g.
    `semcoder repair . -- tests/test_io.py -k "not slow"`.
    """
    console = Console(stderr=True, quiet=as_json)
    try:
        if resume_id is None:
            config = _run_config(model, patcher, feedback, max_iterations, max_tokens, max_time, samples,
                                 mutants_per_step).model_copy(
                update={"max_new_tokens": max_new_tokens, "temperature": temperature,
                        "allow_suspicious": allow_suspicious})
            task = _load_task(path, tests)
            if pytest_args:
                task = with_targets(task, pytest_args)
            if env:
                task = task.model_copy(update={"env": _env_pairs(env)})
            environment = detect_environment(Path(task.root) if task.root else None, python)
            config = config.model_copy(update={"python": environment.python})
            console.print(f"tests run with {environment.describe()}")
            for note in task.notes:
                console.print(f"note: {note}")
    except (TaskError, ValueError) as exc:
        _fail(str(exc), as_json)
    with open_store(db) as store:
        if resume_id is not None:
            try:
                outcome = _resume(store, resume_id, console)
            except (click.ClickException, TaskError) as exc:  # TaskError: its snapshot is missing or was changed
                _fail(str(exc), as_json)
        else:
            run_id = uuid.uuid4().hex[:12]
            store.record_start(run_id, str(Path(task.root or '.') if task.kind == 'project' else path.resolve()), task.kind)
            console.print(f"run [bold]{run_id}[/] started ({task.kind}-level, {len(task.editable)} editable files)")
            try:
                outcome = _drive(store, run_id, initial_state(run_id, task, config, store.snapshots), config,
                                 console)
            except SandboxError as exc:  # the sandbox cannot run this project's environment: say why, no traceback
                store.record_outcome(run_id, status="error", iterations=0, tests_passed=0, tests_total=0,
                                     stop_reason=str(exc))
                _fail(str(exc), as_json)
        if apply_fix and outcome["diff"]:
            _apply(store, outcome, console, as_json)
    _report(outcome, console, as_json)
    sys.exit(_EXIT[outcome["status"]])


def _env_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise TaskError(f"--env {pair!r}: expected NAME=VALUE")
        if name in RESERVED_ENV:
            raise TaskError(f"--env {name}: the sandbox sets {name} itself (a private directory, the project's "
                            "interpreter)")
        env[name] = value
    return env


def _load_task(path: Path | None, tests: Path | None) -> Task:
    if path is None:
        raise TaskError("give a FILE.py with --tests, a project DIR, or --resume RUN_ID")
    if tests is not None:
        return function_task(path, tests)
    if path.is_file():
        raise TaskError(f"{path} is a file: pass its tests with --tests TEST_FILE.py (or give a project directory)")
    return project_task(path)


def _run_config(model: str, patcher: str | None, feedback: str, max_iterations: int, max_tokens: int,
                max_time: float, samples: int, mutants_per_step: int) -> RunConfig:
    if patcher in ("model", "both") and model == "none":
        raise ValueError(f"--patcher {patcher} needs a model: pass --model BACKEND:NAME")
    return RunConfig(model=model, patcher=patcher or ("mutation" if model == "none" else "both"),
                     feedback=feedback, max_iterations=max_iterations, max_tokens=max_tokens,
                     max_time_s=max_time, samples=samples, mutants_per_step=mutants_per_step)


def _resume(store: RunStore, run_id: str, console: Console) -> RepairOutcome:
    if store.find(run_id) is None:
        raise click.ClickException(f"no run {run_id!r} in this database (see `semcoder runs`)")
    values = run_values(store.checkpointer, run_id)
    if not values:
        raise click.ClickException(f"run {run_id} has no checkpoint to resume from")
    load_task(values, store.snapshots)  # a missing or changed snapshot stops here, before the sandbox starts
    console.print(f"resuming run [bold]{run_id}[/] at iteration {values.get('iteration', 0)}")
    return _drive(store, run_id, None, RunConfig(**values["config"]), console, values)


def _drive(store: RunStore, run_id: str, inputs: dict[str, Any] | None, config: RunConfig, console: Console,
           known: dict[str, Any] | None = None) -> RepairOutcome:
    progress = _Progress(known or inputs or {})
    with open_deps(config, store.snapshots) as deps:
        isolation = deps.isolation
        if isolation.get("level") != "full":
            console.print(f"[yellow]warning[/]: the sandbox has PARTIAL isolation here (missing: "
                          f"{', '.join(isolation.get('missing') or ['?'])})")
        graph = build_graph(deps, store.checkpointer)
        with console.status("starting") as status:
            for update in graph.stream(inputs, thread_config(run_id), stream_mode="updates", durability="sync"):
                for node, change in update.items():
                    status.update(progress.line(node, change or {}))
        state = graph.get_state(thread_config(run_id)).values
    outcome = outcome_of(state, load_task(state, store.snapshots), isolation)
    store.record_outcome(run_id, status=outcome["status"], iterations=outcome["iterations"],
                         tests_passed=outcome["tests_passed"], tests_total=outcome["tests_total"],
                         stop_reason=state.get("stop_reason", ""))
    console.print(f"[bold]{outcome['status']}[/]: {state.get('stop_reason', '')}")
    if outcome["status"] == "error" and console.quiet:
        click.echo(f"Error: {state.get('stop_reason', '')}", err=True)
    return outcome


class _Progress:
    """Iteration, node and tests passing, from the stream of node updates."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.iteration = state.get("iteration", 0)
        self.passing = self._passing(state.get("best"))

    def line(self, node: str, change: dict[str, Any]) -> str:
        self.iteration = change.get("iteration", self.iteration)
        self.passing = self._passing(change.get("best")) or self.passing
        return f"iteration {self.iteration} · {node} done · tests passing (best so far): {self.passing or '-'}"

    @staticmethod
    def _passing(best: dict[str, Any] | None) -> str:
        return f"{Attempt(**best).passed}/{Attempt(**best).total}" if best else ""


def outcome_of(state: dict[str, Any], task: Task, isolation: dict[str, Any] | None = None) -> RepairOutcome:
    """The run's outcome from its state and task (load_task)."""
    best = Attempt(**state["best"]) if state.get("best") else None
    status = state.get("status", "running")
    if status == "running":
        status = "not_fixed"
    diff = unified_diff(task, best.files) if best is not None and status != "error" else ""
    rejected = [r for entry in state.get("history") or [] for r in entry.get("rejected") or [] if isinstance(r, dict)]
    return RepairOutcome.of(status, state["run_id"], state.get("iteration", 0), diff,
                            best.passed if best else 0, best.total if best else 0,
                            stop_reason=state.get("stop_reason", ""),
                            confirmation=best.confirmation if best is not None else "", rejected=rejected,
                            isolation=isolation, notes=task.notes)


def _apply(store: RunStore, outcome: RepairOutcome, console: Console, as_json: bool) -> None:
    values = run_values(store.checkpointer, outcome["run_id"])
    try:
        written = apply_files(load_task(values, store.snapshots), Attempt(**values["best"]).files)
    except (ApplyError, OSError) as exc:
        _fail(f"could not apply the diff: {exc}", as_json, outcome)
    console.print("applied to " + ", ".join(str(p) for p in written))


def _report(outcome: RepairOutcome, console: Console, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(outcome))
        return
    out = Console()
    if outcome["diff"]:
        out.print(Syntax(outcome["diff"], "diff", theme="ansi_dark", background_color="default"))
    for rejection in outcome["rejected"][:5]:
        out.print(f"rejected {rejection['origin']}: {rejection['why']}: {'; '.join(rejection['reasons'])[:200]}")
    out.print(f"{outcome['status']}: {outcome['tests_passed']}/{outcome['tests_total']} tests pass after "
              f"{outcome['iterations']} iterations (run {outcome['run_id']})")
    if outcome["confirmation"]:
        out.print(f"confirmed independently: {outcome['confirmation']}")
    isolation = outcome["isolation"]
    if isolation:
        out.print(f"sandbox: {isolation.get('backend', '?')} backend, {isolation.get('level', '?')} isolation"
                  + (f" (bwrap {isolation['bwrap_version']} from the {isolation['bwrap_source']})"
                     if isolation.get("bwrap_source") else ""))


def _fail(message: str, as_json: bool, outcome: RepairOutcome | None = None) -> None:
    if as_json:
        click.echo(json.dumps({**(outcome or RepairOutcome.of("error", stop_reason=message)), "status": "error"}))
    click.echo(f"Error: {message}", err=True)
    sys.exit(_EXIT["error"])


@click.command("runs")
@click.option("--db", type=click.Path(path_type=Path), default=None, help="Run database.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=int, default=50, show_default=True)
def runs_command(db: Path | None, as_json: bool, limit: int) -> None:
    """List repair runs, newest first, with their outcome."""
    with open_store(db) as store:
        records = store.runs(limit)
    if as_json:
        for record in records:
            click.echo(record.model_dump_json())
        return
    table = Table("run", "status", "iter", "tests", "target", "reason")
    for r in records:
        table.add_row(r.run_id, r.status, str(r.iterations), f"{r.tests_passed}/{r.tests_total}", r.target,
                      r.stop_reason[:60])
    Console().print(table)
