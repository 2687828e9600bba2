"""`semcoder mcp`: the sandbox, the tracer and the test runner as MCP tools, for MCP hosts (see docs/mcp.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

import sandbox
from agent.api.auth import check_bind
from agent.persistence import db_location, db_option, open_store
from agent.tasks import TaskError


@click.command("mcp")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio: the host starts this process and speaks over its stdin/stdout; http: streamable HTTP "
              "at http://HOST:PORT/mcp.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="http: address to bind; anything but loopback requires SEMCODER_API_TOKEN.")
@click.option("--port", type=click.IntRange(0, 65535), default=8766, show_default=True, help="http: port.")
@click.option("--allowed-root", "allowed_roots", multiple=True, type=click.Path(path_type=Path, file_okay=False),
              help="A directory the tools may read (repeatable; or SEMCODER_ALLOWED_ROOTS=a,b). Default: the "
              "current working directory.")
@click.option("--backend", type=click.Choice(sandbox.BACKENDS), default=None,
              help="Sandbox backend (overrides SEMCODER_SANDBOX_BACKEND; default local).")
@click.option("--max-output-chars", type=int, default=None,
              help="Most characters of one text in a tool's answer (overrides SEMCODER_MAX_OUTPUT_CHARS; default "
              "20000).")
@db_option
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="Of the log on stderr.")
def mcp_command(transport: str, host: str, port: int, allowed_roots: tuple[Path, ...], backend: str | None,
                max_output_chars: int | None, db: str | None, log_level: str) -> None:
    """Serve semcoder's sandbox, tracer, test runner and repair loop as MCP tools: run_python, trace, run_tests,
    explain_failure, repair; and past runs as resources.

    In stdio mode stdout carries only protocol messages; everything else goes to stderr.
    """
    from pydantic import ValidationError

    from agent.mcp_server._server import build_server
    from agent.mcp_server._settings import McpSettings
    from agent.mcp_server._tools import SharedPool

    overrides = {key: value for key, value in {"allowed_roots": list(allowed_roots) or None,
                                               "sandbox_backend": backend,
                                               "max_output_chars": max_output_chars, "db_url": db}.items()
                 if value is not None}
    try:
        settings = McpSettings(**overrides).with_default_root()
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    missing = [str(root) for root in settings.allowed_roots if not root.is_dir()]
    if missing:
        raise click.ClickException(f"allowed root(s) not a directory: {', '.join(missing)}")
    pool = SharedPool(settings)
    try:
        with open_store(settings.db_url) as store:
            _serve(build_server(settings, store, pool, http=transport == "http", log_level=log_level.upper()),
                   settings, transport, host, port)
    except TaskError as exc:  # the run store's location is not one
        raise click.ClickException(str(exc)) from exc
    finally:
        pool.close()


def _serve(server: Any, settings: Any, transport: str, host: str, port: int) -> None:
    from agent._stdio import guarded_stdio

    roots = ", ".join(map(str, settings.allowed_roots))
    click.echo(f"semcoder mcp: runs in {db_location(settings.db_url)}", err=True)
    if transport == "stdio":
        click.echo(f"semcoder mcp: stdio, allowed roots {roots}, {settings.sandbox_backend} sandbox, pid "
                   f"{os.getpid()}", err=True)
        with guarded_stdio():  # JSON-RPC errors for lines that are not messages (the SDK drops them unanswered)
            server.run("stdio")
        return
    try:
        check_bind(host, settings.api_token is not None)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"semcoder mcp: http://{shown}:{port}/mcp (allowed roots {roots}, {settings.sandbox_backend} sandbox, "
               f"{'bearer token required' if settings.api_token else 'no token'}, pid {os.getpid()})", err=True)
    server.run("streamable-http", host=host, port=port)
