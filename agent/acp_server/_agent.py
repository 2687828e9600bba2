"""The ACP agent: sessions are a project directory (the session's cwd) and its repair runs.

A prompt ("fix the failing tests", optionally naming test files or node ids, as text or as file links) starts a
run on the one run store and driver every front end uses (agent/runs.py); its events become session updates
(_updates.py). When the run has a diff, the agent asks `session/request_permission` (apply once / discard) before
any file is touched, checks each file still holds the text the run started from, and writes through the client's
`fs/write_text_file` when it offers one (the editor's buffers stay in sync), else itself. `session/cancel` ends
the run at its next node boundary; `session/list` and `session/load` reopen past runs, from any front end.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from acp import (
    PROTOCOL_VERSION,
    InitializeResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PromptResponse,
    RequestError,
    SetSessionConfigOptionResponse,
    start_tool_call,
    tool_diff_content,
    update_agent_message_text,
    update_tool_call,
)
from acp.schema import (
    AgentCapabilities,
    AllowedOutcome,
    ClientCapabilities,
    Implementation,
    ListSessionsResponse,
    PermissionOption,
    PromptCapabilities,
    SessionCapabilities,
    SessionConfigOptionSelect,
    SessionConfigSelectOption,
    SessionInfo,
    SessionListCapabilities,
    ToolCallLocation,
    ToolCallUpdate,
)

from agent import runs
from agent.acp_server._updates import RunView
from agent.diff import ApplyError
from agent.graph import run_values
from agent.models import ModelConfig, ModelError, OpenAIGenerator, served_models
from agent.persistence import Event, RunRow, RunStore
from agent.preflight import check_model
from agent.repair_settings import Prepared, parse, prepare
from agent.state import Attempt, RunConfig
from agent.tasks import Task, TaskError, is_test_file, project_task

_NAMED = re.compile(r"[\w./-]+\.py(?:::[\w\[\]\-.:,=]+)?")
_CHOICES: dict[str, tuple[str, list[str]]] = {
    "patcher": ("Patches from", ["auto", "model", "mutation", "both"]),
    "feedback": ("What the model sees of the failure", ["semcoder", "trace", "blocks"]),
    "max_iterations": ("Patch steps", ["1", "2", "4", "8", "16", "32"]),
}
_ALLOW, _REJECT = "apply", "discard"
_PAGE = 100


@dataclass
class _Session:
    id: str
    cwd: Path
    settings: dict[str, Any]
    run_id: str | None = None
    cancelled: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SemcoderAgent:
    """`defaults`: the repair settings `semcoder acp` was started with (the same flags as `semcoder repair`)."""

    def __init__(self, store: RunStore, defaults: dict[str, Any]) -> None:
        self._store = store
        self._defaults = defaults
        self._client: Any = None
        self._sessions: dict[str, _Session] = {}
        self._client_fs = (False, False)  # (reads, writes) text files
        self._served: list[str] | None = None  # the model server's models, asked once

    def on_connect(self, conn: Any) -> None:
        self._client = conn

    async def initialize(self, protocol_version: int, client_capabilities: ClientCapabilities | None = None,
                         client_info: Implementation | None = None, **_: Any) -> InitializeResponse:
        fs = client_capabilities.fs if client_capabilities else None
        self._client_fs = (bool(fs and fs.read_text_file), bool(fs and fs.write_text_file))
        return InitializeResponse(
            protocol_version=min(protocol_version, PROTOCOL_VERSION),
            agent_capabilities=AgentCapabilities(
                load_session=True, prompt_capabilities=PromptCapabilities(embedded_context=True),
                session_capabilities=SessionCapabilities(list=SessionListCapabilities())),
            agent_info=Implementation(name="semcoder", title="SemCoder Agent", version=version("semcoder-agent")),
            auth_methods=[])

    async def authenticate(self, method_id: str, **_: Any) -> None:
        return None  # a local agent: nothing to authenticate

    async def new_session(self, cwd: str, **_: Any) -> NewSessionResponse:
        if self._served is None:
            self._served = await asyncio.to_thread(_served_models)
        session = self._open(uuid.uuid4().hex[:16], cwd)
        return NewSessionResponse(session_id=session.id, config_options=self._options(session))

    async def load_session(self, cwd: str, session_id: str, **_: Any) -> LoadSessionResponse:
        rows = await asyncio.to_thread(self._runs_of, session_id)
        if not rows:
            raise RequestError.invalid_params({"sessionId": session_id, "details": "no such session or run in the "
                                               "run store (see session/list)"})
        session = self._open(session_id, cwd)
        for row in rows:
            await self._replay(session_id, row)
        return LoadSessionResponse(config_options=self._options(session))

    async def list_sessions(self, cwd: str | None = None, cursor: str | None = None, **_: Any) -> ListSessionsResponse:
        start = int(cursor) if cursor and cursor.isdigit() else 0
        infos = await asyncio.to_thread(self._session_infos, cwd)
        page = infos[start:start + _PAGE]
        return ListSessionsResponse(sessions=page,
                                    next_cursor=str(start + _PAGE) if start + _PAGE < len(infos) else None)

    async def set_config_option(self, config_id: str, session_id: str, value: str | bool,
                                **_: Any) -> SetSessionConfigOptionResponse:
        session = self._session(session_id)
        options = {option.id: option for option in self._options(session)}
        if config_id not in options:
            raise RequestError.invalid_params({"configId": config_id, "details": f"known: {', '.join(options)}"})
        allowed = [choice.value for choice in options[config_id].options]  # type: ignore[union-attr]
        if value not in allowed:
            raise RequestError.invalid_params({"value": value, "details": f"one of: {', '.join(allowed)}"})
        if config_id == "patcher" and value == "auto":
            session.settings.pop("patcher", None)
        else:
            session.settings[config_id] = int(value) if config_id == "max_iterations" else value
        return SetSessionConfigOptionResponse(config_options=self._options(session))

    async def set_session_mode(self, session_id: str, mode_id: str, **_: Any) -> None:
        raise RequestError.method_not_found("session/set_mode")

    def close(self) -> None:
        """The editor went away: every run still going stops at its next node (and the process can exit)."""
        for session in self._sessions.values():
            if session.run_id is not None:
                runs.cancel(self._store, session.run_id)

    async def cancel(self, session_id: str, **_: Any) -> None:
        session = self._sessions.get(session_id)
        if session is not None and session.run_id is not None:
            session.cancelled = True
            await asyncio.to_thread(runs.cancel, self._store, session.run_id)

    async def prompt(self, session_id: str, prompt: list[Any], **_: Any) -> PromptResponse:
        session = self._session(session_id)
        if session.lock.locked():
            raise RequestError.invalid_request({"details": "a repair is already running in this session"})
        async with session.lock:
            session.cancelled = False
            return await self._repair(session, prompt)

    # the repair

    async def _repair(self, session: _Session, prompt: list[Any]) -> PromptResponse:
        text = "\n".join(getattr(block, "text", "") or "" for block in prompt).strip()
        try:
            prepared = await asyncio.to_thread(self._prepare, session, _named_tests(prompt, session.cwd))
            await asyncio.to_thread(check_model, prepared.task, prepared.config)
        except (TaskError, ModelError) as exc:
            await self._say(session.id, f"Cannot start a repair: {exc}")
            return PromptResponse(stop_reason="end_turn")
        for note in prepared.task.notes:
            await self._say(session.id, f"note: {note}\n")
        run_id = runs.start(self._store, prepared.task, prepared.config, str(session.cwd), "acp",
                            prepared.environment, session=session.id, prompt=text or None)
        session.run_id = run_id
        try:
            driven = await self._follow(session.id, run_id, prepared.config, prepared.task.files)
        except asyncio.CancelledError:  # the connection closed under the prompt: the run stops at its next node
            runs.cancel(self._store, run_id)
            raise
        except Exception as exc:  # infrastructure (the sandbox, the model server): the run recorded it as 'error'
            await self._say(session.id, f"The repair failed: {exc}")
            return PromptResponse(stop_reason="end_turn")
        finally:
            session.run_id = None
        if driven.status == "cancelled" or session.cancelled:
            return PromptResponse(stop_reason="cancelled")
        if driven.outcome and driven.outcome["diff"]:
            await self._offer(session, run_id, prepared.task)
        return PromptResponse(stop_reason="end_turn")

    def _prepare(self, session: _Session, tests: list[str]) -> Prepared:
        settings = parse({**self._defaults, **session.settings,
                          **({"pytest_args": tests} if tests else {})})
        # (a server's rule: $VIRTUAL_ENV is the environment the editor started semcoder in, not the project's)
        prepared = prepare(settings, project_task(session.cwd), activated=False)
        # The editor shows the failing test's trace, whether or not the model is shown one.
        return prepared._replace(config=prepared.config.model_copy(update={"show_trace": True}))

    async def _follow(self, session_id: str, run_id: str, config: RunConfig, originals: dict[str, str]) -> runs.Driven:
        """Drives the run on a thread and sends its events as session updates, in order, as they come."""
        view = RunView(run_id, str(self._sessions[session_id].cwd), config.uses_model, originals)

        async def show(event: Event) -> None:
            await self._send(session_id, view.updates(event))

        return await runs.follow(lambda report: runs.drive(self._store, run_id, on_event=report), show)

    async def _offer(self, session: _Session, run_id: str, task: Task) -> None:
        """Asks before writing the best attempt's files; writes them only if allowed and unchanged since the run
        started."""
        values = await asyncio.to_thread(run_values, self._store.checkpointer, run_id)
        best = Attempt(**values["best"])
        changed = {path: text for path, text in sorted(best.files.items()) if task.files.get(path) != text}
        root = Path(task.root or session.cwd)
        call_id = f"{run_id}-apply"
        call = ToolCallUpdate(
            tool_call_id=call_id, kind="edit", status="pending",
            title=f"Apply the fix ({best.passed}/{best.total} tests pass) to {len(changed)} file(s)",
            content=[tool_diff_content(str(root / path), new_text=text, old_text=task.files[path])
                     for path, text in changed.items()],
            locations=[ToolCallLocation(path=str(root / path)) for path in changed])
        await self._send(session.id, [start_tool_call(call_id, call.title or "", kind="edit", status="pending",
                                                      content=call.content, locations=call.locations)])
        answer = await self._client.request_permission(
            session_id=session.id, tool_call=call,
            options=[PermissionOption(option_id=_ALLOW, name="Apply the fix", kind="allow_once"),
                     PermissionOption(option_id=_REJECT, name="Discard it", kind="reject_once")])
        outcome = answer.outcome
        if not (isinstance(outcome, AllowedOutcome) and outcome.option_id == _ALLOW) or session.cancelled:
            await self._send(session.id, [update_tool_call(call_id, status="failed", raw_output={"applied": False})])
            await self._say(session.id, "\nLeft your files as they were; the diff stays in the run "
                                        f"(`semcoder runs`, run {run_id}).")
            return
        try:
            written = await self._write(session.id, root, task, changed)
        except (ApplyError, OSError) as exc:
            await self._send(session.id, [update_tool_call(call_id, status="failed", raw_output={"error": str(exc)})])
            await self._say(session.id, f"\nNot applied: {exc}")
            return
        await self._send(session.id, [update_tool_call(call_id, status="completed", raw_output={"written": written})])
        await self._say(session.id, "\nApplied to " + ", ".join(written))

    async def _write(self, session_id: str, root: Path, task: Task, changed: dict[str, str]) -> list[str]:
        reads, writes = self._client_fs
        for path in changed:  # every file checked before any is written
            target = root / path
            now = (await self._client.read_text_file(session_id=session_id, path=str(target))).content if reads \
                else await asyncio.to_thread(target.read_text, encoding="utf-8")
            if now != task.files[path]:
                raise ApplyError(f"{target} changed since the run started")
        for path, text in changed.items():
            if writes:
                await self._client.write_text_file(session_id=session_id, path=str(root / path), content=text)
            else:
                await asyncio.to_thread((root / path).write_text, text, encoding="utf-8")
        return [str(root / path) for path in changed]

    # sessions and past runs

    def _open(self, session_id: str, cwd: str) -> _Session:
        path = Path(cwd)
        if not path.is_absolute() or not path.is_dir():
            raise RequestError.invalid_params({"cwd": cwd, "details": "must be an absolute path to a directory"})
        self._sessions[session_id] = session = _Session(session_id, path.resolve(), {})
        return session

    def _session(self, session_id: str) -> _Session:
        if session_id not in self._sessions:
            raise RequestError.invalid_params({"sessionId": session_id, "details": "no such session (session/new "
                                               "or session/load first)"})
        return self._sessions[session_id]

    def _options(self, session: _Session) -> list[SessionConfigOptionSelect]:
        settings = {**self._defaults, **session.settings}
        models = list(dict.fromkeys(["none", self._defaults.get("model", "none"), *(self._served or [])]))
        options = [SessionConfigOptionSelect(
            type="select", id="model", name="Model", category="model", current_value=settings.get("model", "none"),
            options=[SessionConfigSelectOption(value=m, name=m) for m in models])]
        defaults = RunConfig()
        for key, (name, choices) in _CHOICES.items():
            current = str(settings.get(key, "auto" if key == "patcher" else getattr(defaults, key)))
            options.append(SessionConfigOptionSelect(
                type="select", id=key, name=name, current_value=current,
                options=[SessionConfigSelectOption(value=c, name=c) for c in dict.fromkeys([*choices, current])]))
        return options

    def _runs_of(self, session_id: str) -> list[RunRow]:
        rows = self._store.list(limit=1000, session=session_id)
        if not rows and (row := self._store.get(session_id)) is not None:
            rows = [row]  # a run from another front end, opened by its id
        return sorted(rows, key=lambda row: (row.created, row.run_id))

    async def _replay(self, session_id: str, row: RunRow) -> None:
        try:
            originals: dict[str, str] | None = (await asyncio.to_thread(self._store.inputs, row.run_id))[0].files
        except TaskError:  # a run recorded without its task (an older semcoder): candidates shown as diff text
            originals = None
        after = 0
        view: RunView | None = None
        while events := await asyncio.to_thread(self._store.events_after, row.run_id, after):
            for event in events:
                if view is None:
                    config = RunConfig(**event.data.get("config", {})) if event.type == "queued" else RunConfig()
                    view = RunView(row.run_id, str(_root_of(row)), config.uses_model, originals)
                await self._send(session_id, view.updates(event, replay=True))
                after = event.id

    def _session_infos(self, cwd: str | None) -> list[SessionInfo]:
        wanted = Path(cwd).resolve() if cwd else None
        infos: dict[str, SessionInfo] = {}
        for row in self._store.list(limit=10_000):
            key = row.session or row.run_id
            root = _root_of(row)
            if key in infos or (wanted is not None and root != wanted):
                continue  # rows come newest first: the first row of a session is its latest
            infos[key] = SessionInfo(session_id=key, cwd=str(root), title=f"{row.status}: {row.target} ({row.origin})",
                                     updated_at=datetime.fromtimestamp(row.updated, UTC).isoformat())
        return list(infos.values())

    async def _send(self, session_id: str, updates: list[Any]) -> None:
        for update in updates:
            await self._client.session_update(session_id=session_id, update=update)

    async def _say(self, session_id: str, text: str) -> None:
        await self._send(session_id, [update_agent_message_text(text)])


def _served_models() -> list[str]:
    """The models SEMCODER_MODEL_URL serves, as model settings (openai:NAME); none where it is unset or down."""
    if not os.environ.get("SEMCODER_MODEL_URL"):
        return []
    config = ModelConfig(backend="openai", model="-")
    try:
        names = served_models(OpenAIGenerator("-", config.model_url, api_key=config.api_key.get_secret_value(), timeout_s=5,
                                              max_retries=0)) or {}
    except ModelError:
        return []
    return [f"openai:{name}" for name in names]


def _root_of(row: RunRow) -> Path:
    target = Path(row.target)
    return target if row.kind == "project" else target.parent


def _named_tests(prompt: list[Any], cwd: Path) -> list[str]:
    """Test files and node ids the prompt names, as text or as links to files under the project."""
    named: list[str] = []
    for block in prompt:
        uri = getattr(block, "uri", None) or getattr(getattr(block, "resource", None), "uri", None)
        if uri and uri.startswith("file://"):
            named.append(unquote(urlparse(uri).path))
        named += _NAMED.findall(getattr(block, "text", "") or "")
    selection: list[str] = []
    for item in named:
        path, sep, node = item.partition("::")
        file = Path(path) if Path(path).is_absolute() else cwd / path
        try:
            relative = file.resolve().relative_to(cwd)
        except ValueError:
            continue  # outside the project
        if file.is_file() and is_test_file(str(relative)):
            selection.append(f"{relative}{sep}{node}")
    return list(dict.fromkeys(selection))
