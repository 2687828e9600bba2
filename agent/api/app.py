"""The FastAPI application: settings in, database, sandbox pool and run manager opened for its lifetime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import version

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

import sandbox
from agent.api.intake import Forbidden
from agent.api.limits import BodyLimit
from agent.api.manager import RunManager
from agent.api.pages import pages
from agent.api.routes import public, v1
from agent.api.settings import ApiSettings
from agent.persistence import open_store
from agent.repair_settings import describe
from agent.tasks import TaskError

log = logging.getLogger("semcoder.api")

DESCRIPTION = """Drive the SemCoder repair loop from an editor or a bot: submit a failing function or project,
watch node-level progress as Server-Sent Events, cancel, and fetch the best diff. Runs survive restarts.
Every /v1 route needs `Authorization: Bearer <SEMCODER_API_TOKEN>`. See docs/ide.md; `/` is a web page of
the runs (docs/viewer.md)."""


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    app = FastAPI(title="SemCoder Agent API", version=version("semcoder-agent"), description=DESCRIPTION,
                  lifespan=_lifespan)
    app.state.settings = settings
    app.include_router(public)
    app.include_router(pages)
    app.include_router(v1)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(TaskError, _refused)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ApiSettings = app.state.settings
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(open_store(settings.db_url))
        pool = stack.enter_context(sandbox.Pool(workers=settings.sandbox_workers, backend=settings.sandbox_backend))
        manager = RunManager(store, pool, settings.max_concurrent_runs, sandbox_workers=settings.sandbox_workers,
                             lease_s=settings.lease_s)
        app.state.store, app.state.manager = store, manager
        waiting = manager.start()
        if waiting:
            log.warning("replica %s: %d unfinished run(s) waiting (a run another replica holds resumes here once its "
                        "lease runs out)", manager.replica, waiting)
        try:
            yield
        finally:
            await run_in_threadpool(manager.close)


async def _validation_error(request: object, exc: Exception) -> JSONResponse:
    """422: `detail` is the message `semcoder repair` prints for the same settings; `errors` FastAPI's list, minus
    echoed inputs (a request may carry a whole project)."""
    assert isinstance(exc, RequestValidationError)
    errors = [{key: value for key, value in error.items() if key not in ("input", "ctx", "url")}
              for error in exc.errors()]
    return JSONResponse({"detail": describe(errors), "errors": errors}, status_code=422)


async def _refused(request: object, exc: Exception) -> JSONResponse:
    """The one error hierarchy of bad input (agent.tasks.TaskError): 403 for what the server may not touch
    (Forbidden), 422 for the rest, with the message the command line prints."""
    return JSONResponse({"detail": str(exc)}, status_code=403 if isinstance(exc, Forbidden) else 422)
