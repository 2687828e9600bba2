"""`semcoder mcp`: an MCP server exposing the sandbox, the tracer and the test runner as tools.

    semcoder mcp                                  # stdio, for an MCP host (Claude Code, an IDE)
    semcoder mcp --transport http --port 8766     # streamable HTTP at http://127.0.0.1:8766/mcp

Tools: run_python, trace, run_tests, explain_failure (agent/mcp_server/_tools.py). Every path must lie under an
allowed root; untrusted code runs only in the sandbox. See docs/mcp.md.

    >>> from agent.mcp_server import McpSettings, build_server
    >>> server = build_server(McpSettings(allowed_roots=["/src/project"]))  # an mcp.server.mcpserver.MCPServer

More tools and resources are added beside `register_tools` in `build_server`.
"""

from agent.mcp_server._cli import mcp_command
from agent.mcp_server._server import build_server
from agent.mcp_server._settings import McpSettings
from agent.mcp_server._tools import Toolbox, register_tools

__all__ = ["McpSettings", "Toolbox", "build_server", "mcp_command", "register_tools"]
