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
from agent.graph import build_graph, initial_state, open_deps, run_values, thread_config
from agent.models import ModelError
from agent.persistence import RunStore, load_task, open_store
from agent.preflight import check_model
from agent.repair_settings import RunSetup, cli_parameters, given, parse, prepare
from agent.state import Attempt, RunConfig
from agent.tasks import Task, TaskError, function_task, project_task
from sandbox import SandboxError

_EXIT = {"fixed": 0, "not_fixed": 1, "error": 2}


class RepairOutcome(dict):
    """The one object `--json` prints."""

    @classmethod
    def of(cls, status: str, run_id: str = "", iterations: int = 0, diff: str = "", passed: int = 0,
           total: int = 0, stop_reason: str = "", confirmation: str = "",
           rejected: list[dict[str, Any]] | None = None, isolation: dict[str, Any] | None = None,
           notes: list[str] | None = None, setup: RunSetup | None = None) -> RepairOutcome:
        return cls(status=status, run_id=run_id, iterations=iterations, diff=diff, tests_passed=passed,
                   tests_total=total, stop_reason=stop_reason, confirmation=confirmation, rejected=rejected or [],
                   isolation=isolation or {}, notes=notes or [], setup=setup.model_dump() if setup else {})


@click.command("repair", context_settings={"ignore_unknown_options": True})
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--tests", "tests", type=click.Path(path_type=Path),
              help="Function-level: the pytest file that imports PATH by its file stem.")
@cli_parameters
@click.option("--db", type=click.Path(path_type=Path), default=None,
              help="Run database (default: ~/.cache/semcoder/runs.sqlite).")
@click.option("--resume", "resume_id", default=None, help="Continue the run with this id.")
@click.option("--apply", "apply_fix", is_flag=True, help="Write the diff into the files (default: only print it).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the report.")
def repair_command(path: Path | None, tests: Path | None, db: Path | None, resume_id: str | None, apply_fix: bool,
                   as_json: bool, **settings: Any) -> None:
    """Repair PATH until its tests pass: a FILE.py with --tests TEST_FILE.py, or a project DIR.

    Anything after `--` goes to pytest as the test selection (node ids, paths, -k EXPR), e.g.
    `semcoder repair . -- tests/test_io.py -k "not slow"`. The settings are the API's (agent/repair_settings.py).
    """
    console = Console(stderr=True, quiet=as_json)
    try:
        if resume_id is None:
            chosen = parse(given(settings))
            task, config, environment = prepare(chosen, _load_task(path, tests))
            console.print(f"tests run with {environment.describe()}")
            for note in task.notes:
                console.print(f"note: {note}")
            checked = check_model(task, config)  # before the run starts: the endpoint, its route, its window
            if checked:
                console.print(checked)
    except (TaskError, ModelError) as exc:  # the error boundary: what the user gave cannot work, said in one line
        _fail(str(exc), as_json)
    with open_store(db) as store:
        if resume_id is not None:
            try:
                outcome = _resume(store, resume_id, console)
            except (click.ClickException, TaskError, SandboxError, ModelError) as exc:  # TaskError: its snapshot is
                _fail(str(exc), as_json)  # missing or was changed; ModelError: the server failed, say why in one line
        else:
            run_id = uuid.uuid4().hex[:12]
            store.record_start(run_id, str(Path(task.root or '.') if task.kind == 'project' else path.resolve()), task.kind)
            console.print(f"run [bold]{run_id}[/] started ({task.kind}-level, {len(task.editable)} editable files)")
            try:
                outcome = _drive(store, run_id, initial_state(run_id, task, config, store.snapshots), config,
                                 console)
            except (SandboxError, ModelError) as exc:  # the sandbox cannot run this project's environment, the model
                # server failed mid-run: say why, no traceback (a model failure leaves a checkpoint: --resume)
                store.record_outcome(run_id, status="error", iterations=0, tests_passed=0, tests_total=0,
                                     stop_reason=str(exc))
                _fail(str(exc), as_json)
        if apply_fix and outcome["diff"]:
            _apply(store, outcome, console, as_json)
    _report(outcome, console, as_json)
    sys.exit(_EXIT[outcome["status"]])


def _load_task(path: Path | None, tests: Path | None) -> Task:
    if path is None:
        raise TaskError("give a FILE.py with --tests, a project DIR, or --resume RUN_ID")
    if tests is not None:
        return function_task(path, tests)
    if path.is_file():
        raise TaskError(f"{path} is a file: pass its tests with --tests TEST_FILE.py (or give a project directory)")
    return project_task(path)


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
                            isolation=isolation, notes=task.notes, setup=RunSetup.of(task, RunConfig(**state["config"])))


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
