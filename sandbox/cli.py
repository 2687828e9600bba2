"""`semcoder sandbox run FILE`: run one Python file in the sandbox and print ONE JSON object.

The sandbox starts first (sandbox.start_early) and the rest is imported while it does.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from sandbox._defaults import BACKENDS
from sandbox._errors import SandboxError


@click.group("sandbox")
def sandbox_group() -> None:
    """Run untrusted Python in isolation."""


@sandbox_group.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Wall-clock and CPU limit in seconds.")
@click.option("--memory-mb", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Memory limit of the whole process tree.")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--stdin", "stdin_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File whose bytes become the program's stdin.")
def run_command(file: Path, timeout: float, memory_mb: int, backend: str, stdin_path: Path | None) -> None:
    """Run FILE; exit 0 whenever the sandbox did its job, whatever the program did."""
    if backend == "local":  # its start-up beside the imports below (sandbox/_early.py)
        from sandbox import start_early

        start_early()
    from sandbox._api import run
    from sandbox._host import isolation_report
    from sandbox._models import Limits

    try:
        code = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{file} is not UTF-8 text: {exc}", param_hint="FILE") from exc
    stdin = stdin_path.read_bytes() if stdin_path else b""
    limits = Limits(wall_time_s=timeout, cpu_time_s=timeout, memory_mb=memory_mb)
    try:
        result = run(code, stdin=stdin, limits=limits, backend=backend)
        # The same shared backend that ran it: which bwrap (and from where), what was missing.
        detail = isolation_report(backend)
    except SandboxError as exc:
        raise click.ClickException(f"sandbox failure: {exc}") from exc
    click.echo(json.dumps({**result.cli_json(), "isolation_detail": detail}, ensure_ascii=False))
