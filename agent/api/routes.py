"""The HTTP surface: thin handlers that validate, call the run manager or the run book, and shape replies."""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from agent import runs
from agent.api.auth import require_token
from agent.api.intake import accept
from agent.api.reports import reports
from agent.api.schemas import (
    ErrorBody,
    Health,
    ModelInfo,
    ModelList,
    Repair,
    RepairList,
    RepairRequest,
    RunStatus,
)
from agent.api.sse import event_stream
from agent.models import split_urls
from agent.persistence import TERMINAL, RunRow

_ERRORS = {401: {"model": ErrorBody, "description": "Missing or wrong bearer token."},
           422: {"model": ErrorBody, "description": "The request is not a valid task (`detail`: the message "
                                                    "`semcoder repair` prints for the same settings)."}}
_NOT_FOUND = {404: {"model": ErrorBody, "description": "No run with this id."}}

public = APIRouter()
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_token)], responses=_ERRORS)
v1.include_router(reports)  # GET /v1/reports...: eval report folders (agent/api/reports.py)


@public.get("/health", response_model=Health, tags=["server"])
def health(request: Request) -> Health:
    state = request.app.state
    return Health(version=version("semcoder-agent"), replica=state.manager.replica, database=state.store.kind,
                  queued=max(state.store.count_unfinished("http") - state.manager.running, 0),
                  running=state.manager.running, max_concurrent_runs=state.settings.max_concurrent_runs)


@v1.post("/repairs", response_model=Repair, status_code=status.HTTP_202_ACCEPTED, tags=["repairs"],
         responses={403: {"model": ErrorBody, "description": "project_path or python outside the allowed roots."},
                    413: {"model": ErrorBody, "description": "Request body too large."},
                    429: {"model": ErrorBody, "description": "Too many unfinished runs."}})
def create_repair(body: RepairRequest, request: Request) -> Repair:
    """Accept a repair; it runs in the background (watch `events_url` or poll GET /v1/repairs/{id})."""
    state = request.app.state
    if state.store.count_unfinished("http") >= state.settings.max_queued_runs:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many unfinished runs; retry later")
    accepted = accept(body, state.settings)  # TaskError: 422, Forbidden: 403 (app.py)
    run_id = state.manager.submit(accepted.task, accepted.config, accepted.target, accepted.environment)
    return _repair(_row(request, run_id))


@v1.get("/repairs", response_model=RepairList, tags=["repairs"])
def list_repairs(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                 status_is: Annotated[RunStatus | None, Query(alias="status")] = None) -> RepairList:
    """Runs, newest first."""
    return RepairList(repairs=[_repair(row) for row in request.app.state.store.list(limit, status_is)])


@v1.get("/repairs/{run_id}", response_model=Repair, tags=["repairs"], responses=_NOT_FOUND)
def get_repair(run_id: str, request: Request) -> Repair:
    """Status, iterations, tests and the best diff so far."""
    return _repair(_row(request, run_id))


@v1.post("/repairs/{run_id}/cancel", response_model=Repair, status_code=status.HTTP_202_ACCEPTED,
         tags=["repairs"], responses={**_NOT_FOUND, 409: {"model": ErrorBody, "description": "The run had ended."}})
def cancel_repair(run_id: str, request: Request) -> Repair:
    """Cancel a run. A queued run ends at once; a running one after its current node (watch for `done`)."""
    row = _row(request, run_id)
    if row.status in TERMINAL or not runs.cancel(request.app.state.store, run_id):
        raise HTTPException(status.HTTP_409_CONFLICT, f"run {run_id} has already ended ({_row(request, run_id).status})")
    return _repair(_row(request, run_id))


@v1.get("/repairs/{run_id}/events", tags=["repairs"], responses={
    **_NOT_FOUND, 200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                        "description": "Server-Sent Events: `queued`, `started`, `node` (one per finished node), "
                                       "`done` (last). Each has an `id` usable as Last-Event-ID."}})
def repair_events(run_id: str, request: Request,
                  last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", pattern=r"^\d{1,12}$")] = None,
                  after: Annotated[int, Query(ge=0, le=10**12, description="Start after this event id "
                                              "(like Last-Event-ID, for clients that cannot set headers).")] = 0,
                  ) -> StreamingResponse:
    """Node-level progress as Server-Sent Events, replayed from the start (or after Last-Event-ID), then live."""
    _row(request, run_id)
    cursor = max(after, int(last_event_id or 0))
    return StreamingResponse(event_stream(request.app.state.store, run_id, cursor, request.is_disconnected),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@v1.get("/models", response_model=ModelList, tags=["server"])
def list_models(request: Request) -> ModelList:
    """Values for `model`: 'none' always; the models the configured OpenAI-compatible server serves."""
    models = [ModelInfo(id="none", description="no model: the mutation engine proposes patches", available=True)]
    url = request.app.state.settings.model_url
    if url:
        models += _served_models(url)
    return ModelList(models=models)


def _served_models(url: str) -> list[ModelInfo]:
    """The models of every server `url` lists (several: comma-separated), each model once."""
    serving: dict[str, list[str]] = {}  # model -> the servers that serve it
    down: list[ModelInfo] = []
    for base in split_urls(url):
        try:
            response = httpx.get(f"{base}/models", timeout=3.0)
            response.raise_for_status()
            names = [entry["id"] for entry in response.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            down.append(ModelInfo(id="openai:<name>", description=f"the model server at {base} did not answer: {exc}",
                                  available=False))
            continue
        for name in names:
            serving.setdefault(name, []).append(base)
    return [ModelInfo(id=f"openai:{name}", description=f"served by {', '.join(bases)}", available=True)
            for name, bases in serving.items()] + down


def _row(request: Request, run_id: str) -> RunRow:
    row = request.app.state.store.get(run_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id!r}")
    return row


def _repair(row: RunRow) -> Repair:
    return Repair(id=row.run_id, events_url=f"/v1/repairs/{row.run_id}/events",
                  **row.model_dump(exclude={"run_id"}))
