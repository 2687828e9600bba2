"""The MCP server's configuration: the API server's settings (agent/api/settings.py), plus the caps on what a tool
call answers.

`McpSettings` extends `ApiSettings` rather than redeclaring anything: `allowed_roots`, `api_token`,
`sandbox_backend` and `sandbox_workers` keep their one name, default, validator and SEMCODER_* variable. Only the
default of the allowed roots differs, and it is applied by the command (`with_default_root`), not here: the API
with no roots accepts no paths, while `semcoder mcp` with none serves the directory it was started in, because an
MCP host starts it inside the project it works on.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from agent.api.settings import ApiSettings


class McpSettings(ApiSettings):
    """Every field can be set as SEMCODER_<FIELD> (SEMCODER_ALLOWED_ROOTS, SEMCODER_API_TOKEN, ...)."""

    max_output_chars: int = Field(
        20_000, ge=1_000, le=2_000_000, description="Most characters of any one text a tool returns (a program's "
        "stdout, a rendered trace, a failure message list); the rest is cut, and the result says so.")

    def with_default_root(self, cwd: Path | None = None) -> McpSettings:
        """These settings, with the working directory as the one allowed root when none is configured."""
        if self.allowed_roots:
            return self
        return self.model_copy(update={"allowed_roots": [(cwd or Path.cwd()).resolve()]})
