"""Where the model is served: one OpenAI-compatible server, or several servers of the same model.

One setting says it everywhere (SEMCODER_MODEL_URL, `semcoder eval --model`, `semcoder data --teacher`,
`semcoder model check`): a URL, or several separated by commas (a repeatable click option joins its values the
same way). The openai backend spreads the requests over the servers (agent/models/_openai.py) and the endpoint
check checks every one of them (agent/models/_endpoint.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

MODEL_URL_HELP = (
    "Base URL of the OpenAI-compatible server ('/v1' is added when missing); several servers of the same model: "
    "URLs separated by commas (or the option repeated), and requests are spread over them (least loaded first; a "
    "server that fails is skipped)."
)


def api_base(url: str) -> str:
    """'http://host:8000' and 'http://host:8000/v1/' both mean the API at 'http://host:8000/v1'."""
    url = url.strip().rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def split_urls(value: str | Sequence[str]) -> tuple[str, ...]:
    """'http://a:8000,http://b:8000/v1' (or a list of such strings) -> each server's API base, in order, once."""
    parts = [value] if isinstance(value, str) else list(value)
    bases: list[str] = []
    for part in parts:
        for url in str(part).split(","):
            if url.strip() and api_base(url) not in bases:
                bases.append(api_base(url))
    return tuple(bases)


def _joined(value: object) -> object:
    """A repeated option or a list (from code or a settings file) becomes the comma-separated spelling."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(part) for part in value)
    return value


def _some_url(value: str) -> str:
    if not split_urls(value):
        raise ValueError("no model server URL given (one URL, or several separated by commas)")
    return value


ModelURLs = Annotated[str, BeforeValidator(_joined), AfterValidator(_some_url)]
"""A setting holding one server URL or several, comma-separated; kept as written (split_urls reads it)."""
