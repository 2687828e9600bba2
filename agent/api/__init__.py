"""The agent as a service for editors and bots: `semcoder serve` (HTTP + Server-Sent Events).

    >>> from agent.api import ApiSettings, create_app
    >>> app = create_app(ApiSettings(db_url="sqlite:////tmp/runs.sqlite"))  # serve with uvicorn

Runs execute in the background under a concurrency bound, persist in the LangGraph checkpointer (SQLite or
Postgres) and resume after a restart. See docs/ide.md for the protocol.
"""

from agent.api.app import create_app
from agent.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
