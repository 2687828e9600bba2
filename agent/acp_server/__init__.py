"""`semcoder acp`: the repair loop as an Agent Client Protocol agent, for editors (Zed, JetBrains, Neovim, Emacs,
VS Code clients) that start it as a subprocess and speak JSON-RPC over its stdin and stdout. See docs/editors.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import click

from agent.persistence import RunStore, db_option, open_store
from agent.repair_settings import cli_parameters, given, parse
from agent.tasks import TaskError

__all__ = ["acp_command"]


@click.command("acp", context_settings={"ignore_unknown_options": True})
@cli_parameters
@db_option
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="Logs go to stderr.")
def acp_command(db: str | None, log_level: str, **settings: Any) -> None:
    """Serve the repair loop to an editor over ACP (stdin/stdout). The flags are `semcoder repair`'s and set each
    session's defaults (an editor can change model, patcher, feedback and iterations per session); runs go to the
    run store every front end shares (`semcoder runs` lists them)."""
    logging.basicConfig(level=log_level.upper(), format="semcoder acp: %(levelname)s %(name)s: %(message)s")
    defaults = given(settings)
    try:
        parse(defaults)  # a bad flag fails here, before an editor connects
        with open_store(db) as store:
            asyncio.run(_serve(store, defaults))
    except TaskError as exc:
        raise click.ClickException(str(exc)) from exc


async def _serve(store: RunStore, defaults: dict[str, Any]) -> None:
    from acp import AgentSideConnection

    from agent._stdio import protocol_streams
    from agent.acp_server._agent import SemcoderAgent

    reader, writer = await protocol_streams()
    agent = SemcoderAgent(store, defaults)
    connection = AgentSideConnection(agent, writer, reader, listening=False)
    try:
        await connection.listen()
    finally:
        agent.close()
        await asyncio.shield(connection.close())
