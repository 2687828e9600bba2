"""`semcoder mcp`: an MCP server exposing the sandbox, the tracer, the test runner and the repair loop as tools.

    semcoder mcp                                  # stdio, for an MCP host (Claude Code, an IDE)
    semcoder mcp --transport http --port 8766     # streamable HTTP at http://127.0.0.1:8766/mcp

Tools: run_python, trace, run_tests, explain_failure (agent/mcp_server/_tools.py), repair; resources: past runs
(agent/mcp_server/_runs.py). Every path must lie under an allowed root; untrusted code runs only in the sandbox.
See docs/mcp.md.

    >>> from agent.mcp_server import McpSettings, build_server
    >>> settings = McpSettings(allowed_roots=["/src/project"])
    >>> with open_store() as store:
    ...     server = build_server(settings, store, SharedPool(settings))  # an MCPServer
"""

from agent.mcp_server._cli import mcp_command
from agent.mcp_server._server import build_server
from agent.mcp_server._settings import McpSettings
from agent.mcp_server._tools import SharedPool, Toolbox, register_tools

__all__ = ["McpSettings", "SharedPool", "Toolbox", "build_server", "mcp_command", "register_tools"]
