"""Bearer-token auth for every /v1 route, and the rule that a token is required off loopback."""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="The server's SEMCODER_API_TOKEN.")


def require_token(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    expected = request.app.state.settings.api_token
    if expected is None:
        return  # loopback-only server without a token (see check_bind)
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token (Authorization: Bearer "
                            "<SEMCODER_API_TOKEN>)", headers={"WWW-Authenticate": "Bearer"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, has_token: bool) -> None:
    """Refuses to expose an unauthenticated server beyond this machine."""
    if not has_token and not is_loopback(host):
        raise ValueError(f"refusing to listen on {host} without a token: set SEMCODER_API_TOKEN "
                         "(or bind 127.0.0.1)")
