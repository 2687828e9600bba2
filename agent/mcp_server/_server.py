"""The MCP server: the SDK's MCPServer with semcoder's tools, over stdio or streamable HTTP.

Over HTTP, a configured SEMCODER_API_TOKEN is checked by the SDK's own bearer-token layer (a TokenVerifier), so
the MCP endpoint answers 401 without it, as the API's /v1 routes do; without a token only loopback may be bound
(agent.api.auth.check_bind, applied by the command). Over stdio the SDK points fd 1 at stderr while it serves, so
nothing but protocol messages reaches stdout, also from the sandbox's child processes; logs go to stderr.
"""

from __future__ import annotations

import secrets
from importlib.metadata import PackageNotFoundError, version

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import SecretStr

from agent.mcp_server._runs import RunTools, register_runs
from agent.mcp_server._settings import McpSettings
from agent.mcp_server._tools import SharedPool, Toolbox, register_tools
from agent.persistence import RunStore

INSTRUCTIONS = """\
semcoder runs Python in an isolated sandbox and shows what it really does, line by line.
- run_python: run a snippet (status, exit code, stdout, stderr).
- trace: the line-level execution of one call (locals at every line, the return value or exception).
- run_tests: a project's (or one test file's) pytest results, per test.
- explain_failure: a failing test reduced to its call and expectation, the most suspicious functions, and the
  real trace of the call: where to look before you patch.
- repair: semcoder's whole repair loop on a project's failing tests; answers the best diff (writes nothing).
- resources semcoder://runs and semcoder://runs/{run_id}: past repair runs, from every front end.
Paths are on the server and must lie under its allowed roots (relative paths: under the first one)."""


class StaticToken:
    """The SDK's TokenVerifier for one shared secret (SEMCODER_API_TOKEN), compared in constant time."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token.get_secret_value().encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if secrets.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id="semcoder-token", scopes=[])
        return None


def build_server(settings: McpSettings, store: RunStore, pool: SharedPool, *, http: bool = False,
                 log_level: str = "INFO") -> MCPServer:
    """The server with every tool and resource registered; `repair` runs go to `store` (the run store every front
    end shares), `run_python` and `trace` run on `pool`. `http`: check SEMCODER_API_TOKEN's bearer token, if one is
    set."""
    auth: dict[str, object] = {}
    if http and settings.api_token is not None:
        # The SDK's bearer check needs AuthSettings, whose issuer URL is only published by the OAuth metadata
        # routes; with no resource_server_url none are mounted, so this placeholder is never shown to anyone.
        auth = {"token_verifier": StaticToken(settings.api_token),
                "auth": AuthSettings(issuer_url="http://localhost", resource_server_url=None)}
    server: MCPServer = MCPServer(name="semcoder", title="SemCoder Agent", instructions=INSTRUCTIONS,
                                  version=_version(), log_level=log_level, **auth)  # type: ignore[arg-type]
    register_tools(server, Toolbox(settings, pool))
    register_runs(server, RunTools(settings, store))
    return server


def _version() -> str:
    try:
        return version("semcoder-agent")
    except PackageNotFoundError:
        return "0"
