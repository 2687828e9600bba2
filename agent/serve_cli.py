"""`semcoder serve`: the agent API for editors and bots (HTTP + Server-Sent Events), see docs/ide.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from agent.api.auth import check_bind
from agent.api.settings import ApiSettings
from agent.persistence import db_location, db_option

_SETTINGS = ApiSettings.model_fields


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback requires SEMCODER_API_TOKEN.")
@click.option("--port", type=int, default=8765, show_default=True)
@db_option
@click.option("--allowed-root", "allowed_roots", multiple=True, type=click.Path(path_type=Path, file_okay=False),
              help="A directory project-level requests may name (repeatable; or SEMCODER_ALLOWED_ROOTS=a,b).")
@click.option("--reports", "reports_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help=f"{_SETTINGS['reports_dir'].description} Or SEMCODER_REPORTS_DIR.")
@click.option("--max-concurrent-runs", type=int, default=None, help="Overrides SEMCODER_MAX_CONCURRENT_RUNS.")
@click.option("--print-openapi", is_flag=True, help="Print the OpenAPI document (docs/openapi.json) and exit.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve_command(host: str, port: int, db: str | None, allowed_roots: tuple[Path, ...], reports_dir: Path | None,
                  max_concurrent_runs: int | None, print_openapi: bool, log_level: str) -> None:
    """Serve the repair loop over HTTP: POST /v1/repairs, watch /v1/repairs/{id}/events, cancel, get the diff."""
    from agent.api import create_app

    overrides = {key: value for key, value in {"db_url": db, "max_concurrent_runs": max_concurrent_runs,
                                               "allowed_roots": list(allowed_roots) or None,
                                               "reports_dir": reports_dir}.items()
                 if value is not None}
    settings = ApiSettings(**overrides)
    app = create_app(settings)
    if print_openapi:
        click.echo(openapi_text(app))
        return
    try:
        check_bind(host, settings.api_token is not None)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    import uvicorn

    click.echo(f"semcoder serve: http://{host}:{port} (runs in {_redacted(db_location(settings.db_url))}, pid {os.getpid()})",
               err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=30)


def openapi_text(app: object) -> str:
    return json.dumps(app.openapi(), indent=2, sort_keys=True)  # type: ignore[attr-defined]


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}***@{rest.split('@', 1)[1]}" if "@" in rest else url
