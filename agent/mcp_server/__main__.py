"""`python -m agent.mcp_server`: `semcoder mcp` without the console script (what the tests and a host with no
installed entry point start)."""

from agent.mcp_server._cli import mcp_command

if __name__ == "__main__":
    mcp_command(prog_name="semcoder mcp")
