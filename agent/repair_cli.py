"""`semcoder repair` and `semcoder runs`: the repair loop on your own failing tests, headless and resumable."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from agent import runs
from agent.diff import ApplyError, apply_files
from agent.graph import run_values
from agent.models import ModelError
from agent.persistence import Event, RunStore, db_option, load_task, open_store
from agent.preflight import check_model
from agent.repair_settings import cli_parameters, given, parse, prepare
from agent.runs import RepairOutcome
from agent.state import Attempt
from agent.tasks import Task, TaskError, function_task, project_task
from sandbox import SandboxError

# A run cancelled from another front end (the API, an editor) ends not fixed.
_EXIT = {"fixed": 0, "not_fixed": 1, "cancelled": 1, "error": 2}


@click.command("repair", context_settings={"ignore_unknown_options": True})
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--tests", "tests", type=click.Path(path_type=Path),
              help="Function-level: the pytest file that imports PATH by its file stem.")
@cli_parameters
@db_option
@click.option("--resume", "resume_id", default=None, help="Continue the run with this id.")
@click.option("--apply", "apply_fix", is_flag=True, help="Write the diff into the files (default: only print it).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the report.")
def repair_command(path: Path | None, tests: Path | None, db: str | None, resume_id: str | None, apply_fix: bool,
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
    try:
        store_context = open_store(db)
        store = store_context.__enter__()
    except TaskError as exc:
        _fail(str(exc), as_json)
    try:
        if resume_id is not None:
            try:
                outcome = _resume(store, resume_id, console)
            except (click.ClickException, TaskError, SandboxError, ModelError) as exc:  # TaskError: its snapshot is
                _fail(str(exc), as_json)  # missing or was changed; ModelError: the server failed, say why in one line
        else:
            target = str(Path(task.root or '.') if task.kind == 'project' else path.resolve())
            run_id = runs.start(store, task, config, target, "cli", environment)
            console.print(f"run [bold]{run_id}[/] started ({task.kind}-level, {len(task.editable)} editable files)")
            try:
                outcome = _drive(store, run_id, console)
            except (SandboxError, ModelError) as exc:  # the sandbox cannot run this project's environment, the model
                _fail(str(exc), as_json)  # server failed mid-run: say why, no traceback (--resume continues it)
        if apply_fix and outcome["diff"]:
            _apply(store, outcome, console, as_json)
    finally:
        store_context.__exit__(None, None, None)
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
    if store.get(run_id) is None:
        raise click.ClickException(f"no run {run_id!r} in this database (see `semcoder runs`)")
    values = run_values(store.checkpointer, run_id)
    if not values:
        raise click.ClickException(f"run {run_id} has no checkpoint to resume from")
    load_task(values, store.snapshots)  # a missing or changed snapshot stops here, before the sandbox starts
    store.reopen(run_id)  # an ended run (an error, a cancel, Ctrl-C) goes on from its last checkpoint
    console.print(f"resuming run [bold]{run_id}[/] at iteration {values.get('iteration', 0)}")
    return _drive(store, run_id, console)


def _drive(store: RunStore, run_id: str, console: Console) -> RepairOutcome:
    """Drives the run as every front end does (agent/runs.py), with a status line from its events."""
    with console.status("starting") as status:
        driven = runs.drive(store, run_id, on_event=lambda event: _show(event, status, console))
    row = store.get(run_id)
    assert row is not None and driven.outcome is not None, f"run {run_id} ended without an outcome"
    console.print(f"[bold]{driven.status}[/]: {row.stop_reason}")
    if driven.status == "error" and console.quiet:
        click.echo(f"Error: {row.stop_reason}", err=True)
    return RepairOutcome({**driven.outcome, "status": driven.status if driven.status in _EXIT else "not_fixed",
                          "stop_reason": row.stop_reason})


def _show(event: Event, status: Any, console: Console) -> None:
    data = event.data
    if event.type == "started" and data["isolation"].get("level") != "full":
        console.print(f"[yellow]warning[/]: the sandbox has PARTIAL isolation here (missing: "
                      f"{', '.join(data['isolation'].get('missing') or ['?'])})")
    elif event.type == "node":
        best = data.get("best")
        passing = f"{best['passed']}/{best['total']}" if best else "-"
        status.update(f"iteration {data.get('iteration', 0)} · {data.get('node')} done · tests passing (best so "
                      f"far): {passing}")


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
@db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=int, default=50, show_default=True)
def runs_command(db: str | None, as_json: bool, limit: int) -> None:
    """List repair runs, newest first, with their outcome: every run, whichever front end started it (the
    command line, the HTTP API, an editor over ACP, an agent over MCP)."""
    try:
        with open_store(db) as store:
            records = store.list(limit)
    except TaskError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        for record in records:
            click.echo(record.model_dump_json())
        return
    table = Table("run", "status", "from", "model", "iter", "tests", "target", "reason")
    for r in records:
        table.add_row(r.run_id, r.status, r.origin, r.model, str(r.iterations), f"{r.tests_passed}/{r.tests_total}",
                      r.target, r.stop_reason[:60])
    Console().print(table)
