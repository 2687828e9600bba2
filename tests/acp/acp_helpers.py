"""An ACP client for the tests: the `agent-client-protocol` SDK's own client side, driving `semcoder acp` as a
subprocess over real stdio. It records every session update, answers permission requests as told, serves
fs/read_text_file and fs/write_text_file from the disk, and keeps a transcript of the JSON-RPC traffic."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from acp import PROTOCOL_VERSION, RequestError, spawn_agent_process, text_block
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    Implementation,
    ReadTextFileResponse,
    RequestPermissionResponse,
    WriteTextFileResponse,
)

ROOT = Path(__file__).resolve().parents[2]


class Editor:
    """The client side of one connection. `decision`: the permission option to choose (None: cancelled)."""

    def __init__(self, decision: str | None = "apply", fs: bool = True) -> None:
        self.decision = decision
        self.fs = fs
        self.updates: list[tuple[str, Any]] = []
        self.permissions: list[Any] = []
        self.writes: list[str] = []
        self.reads: list[str] = []
        self.on_update: Any = None

    async def request_permission(self, options: list[Any], session_id: str, tool_call: Any,
                                 **_: Any) -> RequestPermissionResponse:
        self.permissions.append((tool_call, [o.option_id for o in options]))
        if self.decision is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(outcome=AllowedOutcome(option_id=self.decision, outcome="selected"))

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append((session_id, update))
        if self.on_update is not None:
            await self.on_update(update)

    async def write_text_file(self, content: str, path: str, session_id: str, **_: Any) -> WriteTextFileResponse:
        self.writes.append(path)
        Path(path).write_text(content, encoding="utf-8")
        return WriteTextFileResponse()

    async def read_text_file(self, path: str, session_id: str, limit: int | None = None, line: int | None = None,
                             **_: Any) -> ReadTextFileResponse:
        self.reads.append(path)
        return ReadTextFileResponse(content=Path(path).read_text(encoding="utf-8"))

    async def create_terminal(self, *args: Any, **kwargs: Any) -> Any:
        raise RequestError.method_not_found("terminal/create")

    def kinds(self, session_id: str | None = None) -> list[str]:
        return [u.session_update for s, u in self.updates if session_id in (None, s)]

    def tool_calls(self, kind: str) -> list[Any]:
        return [u for _, u in self.updates if u.session_update == "tool_call" and u.kind == kind]


def agent_command(db: Path, *args: str) -> tuple[str, list[str]]:
    return sys.executable, ["-c", "from agent.cli import main; main()", "acp", "--db", str(db), *args]


@contextlib.asynccontextmanager
async def connected(editor: Editor, db: Path, *args: str, env: dict[str, str] | None = None,
                    transcript: list[str] | None = None) -> AsyncIterator[Any]:
    """An initialized connection to a fresh `semcoder acp` process; its stderr goes to db's folder."""
    command, argv = agent_command(db, *args)
    stderr = open(db.parent / "acp-stderr.log", "ab")  # noqa: SIM115 (closed below, after the process)
    environment = {"PYTHONPATH": str(ROOT), "HOME": os.environ.get("HOME", "/root"),
                   "XDG_CACHE_HOME": str(db.parent / "cache"), **(env or {})}

    def observe(event: Any) -> None:
        if transcript is not None:
            arrow = "->" if event.direction.value == "outgoing" else "<-"
            transcript.append(f"{arrow} {json.dumps(event.message)[:600]}")

    try:
        async with spawn_agent_process(editor, command, *argv, env=environment, cwd=ROOT,
                                       transport_kwargs={"stderr": stderr.fileno()},
                                       observers=[observe]) as (connection, _process):
            await connection.initialize(
                protocol_version=PROTOCOL_VERSION,
                client_capabilities=ClientCapabilities(fs=FileSystemCapabilities(read_text_file=editor.fs,
                                                                                 write_text_file=editor.fs)),
                client_info=Implementation(name="semcoder-tests", version="1"))
            yield connection
    finally:
        stderr.close()


def inventory(tmp_path: Path) -> Path:
    root = tmp_path / "inventory"
    shutil.copytree(ROOT / "examples" / "inventory", root)
    return root


def say(text: str) -> list[Any]:
    return [text_block(text)]
