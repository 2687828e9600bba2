"""The run viewer: a static page at `/` (plain HTML, JS and CSS shipped in agent/api/viewer/, no build step).

The page holds no data: it asks for the server's token once (kept in the tab's sessionStorage) and reads everything
through the authenticated /v1 routes, with the token in the Authorization header (the SSE stream by fetch()).
Its files are served with a strict Content-Security-Policy: only this origin's script, style and connections.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import Response

VIEWER = files("agent.api") / "viewer"
_TYPES = {"index.html": "text/html; charset=utf-8", "viewer.js": "text/javascript; charset=utf-8",
          "viewer.css": "text/css; charset=utf-8"}
_HEADERS = {"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                                       "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                                       "form-action 'none'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

pages = APIRouter(include_in_schema=False)


@pages.get("/")
def index() -> Response:
    return _file("index.html")


@pages.get("/viewer/{name}")
def asset(name: str) -> Response:
    if name not in _TYPES or name == "index.html":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file {name!r}")
    return _file(name)


def _file(name: str) -> Response:
    return Response((VIEWER / name).read_bytes(), media_type=_TYPES[name], headers=_HEADERS)
