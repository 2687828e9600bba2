"""Checks of an OpenAI-compatible endpoint before a run starts: a run that cannot work fails at once, saying why.

- the model name: the server's /v1/models must list it (servers that do not list models are taken at their word);
- the route: the dialect's route must answer (a chat-only server asked for raw completions, or the reverse: 404 or
  405; a model without a chat template: vLLM's 400); the other route is tried to say which --dialect would work;
- the context window: where the server reports `max_model_len` for the model (vLLM does, in /v1/models), the
  longest prompt the run is known to send, plus its completion budget, must fit it. The prompt is counted by the
  server itself: it is sent once with max_tokens=1 (one token of work, its own template and tokenizer).

With several servers of the same model (SEMCODER_MODEL_URL / --model as a comma-separated list), every server is
checked, and they must agree: each serves the model, answers the route, reports the same window (where reported)
and counts the probe's prompt alike (a different count means a different model or template behind the same name).
"""

from __future__ import annotations

from typing import Any

import openai
from pydantic import BaseModel

from agent.models._dialect import Resolved, other_dialect, route_of
from agent.models._openai import OpenAIGenerator, _message, is_context_error
from agent.models._protocol import (
    ChatMessage,
    ContextWindowError,
    EndpointError,
    GenerationRequest,
    ModelError,
)

_ROUTE_MISSING = (404, 405)


class EndpointReport(BaseModel):
    """What the checks found."""

    models: list[str] | None = None  # None: the server does not list its models
    max_model_len: int | None = None
    prompt_tokens: int | None = None  # of the probe, as the server counted them
    servers: list[str] = []  # every server checked (API bases)

    def describe(self) -> str:
        window = f"context window {self.max_model_len} tokens" if self.max_model_len else "context window not reported"
        probe = f", longest known prompt {self.prompt_tokens} tokens" if self.prompt_tokens is not None else ""
        agree = f", the same on all {len(self.servers)} servers" if len(self.servers) > 1 else ""
        return window + probe + agree


def _client(generator: OpenAIGenerator) -> openai.OpenAI:
    """A blocking client of the generator's first (in the checks: only) server."""
    return openai.OpenAI(base_url=generator.base_urls[0], api_key=generator.api_key, timeout=generator.timeout_s,
                         max_retries=min(generator.max_retries, 2))


def _unreachable(generator: OpenAIGenerator, error: Exception) -> ModelError:
    return ModelError(f"cannot reach the model server at {generator.base_url} ({error.__class__.__name__}: {error}); "
                      "start it, or point SEMCODER_MODEL_URL (semcoder eval: --model URL) at it")


def served_models(generator: OpenAIGenerator) -> dict[str, int | None] | None:
    """name -> max_model_len (None where not reported); None where the server has no /v1/models. Several servers:
    the models every server that lists its models serves (the window as the first of them reports it)."""
    listings = [_served_at(generator.at(url)) for url in generator.base_urls]
    known = [listing for listing in listings if listing is not None]
    if not known:
        return None
    return {name: window for name, window in known[0].items() if all(name in listing for listing in known)}


def _served_at(generator: OpenAIGenerator) -> dict[str, int | None] | None:
    try:
        cards = list(_client(generator).models.list())
    except openai.APIStatusError as error:
        if error.status_code in _ROUTE_MISSING:
            return None
        raise ModelError(f"{generator.base_url}/models answered {error.status_code}: {_message(error)}") from error
    except openai.APIConnectionError as error:
        raise _unreachable(generator, error) from error
    return {card.id: _max_model_len(card) for card in cards}


def _max_model_len(card: Any) -> int | None:
    value = (card.model_extra or {}).get("max_model_len")
    return value if isinstance(value, int) and value > 0 else None


def _send(client: openai.OpenAI, generator: OpenAIGenerator, request: GenerationRequest) -> int:
    """One request of one token; the prompt tokens the server counted."""
    params = request.params
    common: dict[str, Any] = {"model": generator.model, "max_tokens": 1, "temperature": 0.0, "n": 1}
    if params.stop:
        common["stop"] = list(params.stop)
    if request.is_chat:
        response: Any = client.chat.completions.create(messages=request.chat(), **common)  # type: ignore[arg-type]
    else:
        response = client.completions.create(prompt=request.prompt or "", **common)
    return response.usage.prompt_tokens if response.usage is not None else 0


def _tiny(dialect: Resolved) -> GenerationRequest:
    if dialect == "chat":
        return GenerationRequest(messages=(ChatMessage(role="user", content="Say OK."),))
    return GenerationRequest(prompt="def add(a, b):\n")


def _route_works(client: openai.OpenAI, generator: OpenAIGenerator, dialect: Resolved) -> bool:
    try:
        _send(client, generator, _tiny(dialect))
    except openai.APIError:
        return False
    return True


def check_endpoint(generator: OpenAIGenerator, dialect: Resolved, probe: GenerationRequest | None = None,
                   max_new_tokens: int = 0, *, name_flag: str = "--model openai:NAME",
                   tokens_flag: str = "--max-new-tokens", urls_flag: str = "SEMCODER_MODEL_URL") -> EndpointReport:
    """Raises EndpointError (ContextWindowError for the window) or ModelError (a server cannot be reached) with a
    message naming the setting to change; `probe` is the longest prompt the run is known to send, in its dialect.
    Every server of the generator is checked and they must agree (`urls_flag` names the setting that lists them)."""
    servers = [generator.at(url) for url in generator.base_urls]
    listings = [served_models(server) for server in servers]
    if len(servers) > 1:
        _same_model(generator, servers, listings, urls_flag)
    reports = [_check_one(server, listing, dialect, probe, max_new_tokens, name_flag, tokens_flag)
               for server, listing in zip(servers, listings, strict=True)]
    if len(servers) > 1:
        _same_window(generator, reports, urls_flag)
    windows = [report.max_model_len for report in reports if report.max_model_len]
    return reports[0].model_copy(update={"servers": list(generator.base_urls),
                                         "max_model_len": min(windows, default=None)})


def _same_model(generator: OpenAIGenerator, servers: list[OpenAIGenerator],
                listings: list[dict[str, int | None] | None], urls_flag: str) -> None:
    """Where some servers serve the model and others do not, say so (none serves it: the check of each says so)."""
    serving = [s.base_url for s, listing in zip(servers, listings, strict=True)
               if listing is None or generator.model in listing]
    lacking = [(s.base_url, listing) for s, listing in zip(servers, listings, strict=True)
               if listing is not None and generator.model not in listing]
    if serving and lacking:
        others = "; ".join(f"{url} serves {', '.join(repr(name) for name in sorted(listing)) or 'none'}"
                           for url, listing in lacking)
        raise EndpointError(f"the model servers disagree: {', '.join(serving)} serve{'s' * (len(serving) == 1)} "
                            f"{generator.model!r}, but {others}; every server in {urls_flag} must serve the same "
                            "model (leave out the others)")


def _same_window(generator: OpenAIGenerator, reports: list[EndpointReport], urls_flag: str) -> None:
    windows = {url: r.max_model_len for url, r in zip(generator.base_urls, reports, strict=True) if r.max_model_len}
    if len(set(windows.values())) > 1:
        each = ", ".join(f"{url}: {window}" for url, window in windows.items())
        raise EndpointError(f"the model servers disagree on {generator.model!r}'s context window (max_model_len "
                            f"{each} tokens); serve the model the same way on each (vllm serve --max-model-len) or "
                            f"leave the odd one out of {urls_flag}")
    counts = {url: r.prompt_tokens for url, r in zip(generator.base_urls, reports, strict=True)
              if r.prompt_tokens is not None}
    if len(set(counts.values())) > 1:
        each = ", ".join(f"{url}: {count}" for url, count in counts.items())
        raise EndpointError(f"the model servers count the same prompt differently ({each} tokens): not the same "
                            f"model (or tokenizer, or chat template) behind the name {generator.model!r}; every "
                            f"server in {urls_flag} must serve the same model")


def _check_one(generator: OpenAIGenerator, served: dict[str, int | None] | None, dialect: Resolved,
               probe: GenerationRequest | None, max_new_tokens: int, name_flag: str,
               tokens_flag: str) -> EndpointReport:
    """The checks of one server, whose models are `served`."""
    report = EndpointReport(servers=[generator.base_url])
    if served is not None:
        report.models = sorted(served)
        if generator.model not in served:
            names = ", ".join(repr(name) for name in sorted(served)) or "none"
            raise EndpointError(f"the model server at {generator.base_url} does not serve {generator.model!r}; it "
                                f"serves: {names} (pass one of them: {name_flag})")
        report.max_model_len = served[generator.model]
    request = probe or _tiny(dialect)
    client = _client(generator)
    route = route_of(dialect)
    try:
        report.prompt_tokens = _send(client, generator, request)
    except openai.APIConnectionError as error:
        raise _unreachable(generator, error) from error
    except openai.APIStatusError as error:
        raise _refusal(client, generator, dialect, route, error, report, tokens_flag) from error
    finally:
        client.close()
    if report.max_model_len and report.prompt_tokens is not None and \
            report.prompt_tokens + max_new_tokens > report.max_model_len:
        raise ContextWindowError(
            f"the prompt does not fit {generator.model!r}'s context window: {report.prompt_tokens} prompt tokens "
            f"(the longest prompt this run is known to send) + {max_new_tokens} new tokens > max_model_len "
            f"{report.max_model_len} at {generator.base_url}; show less context (a smaller function or file, fewer "
            f"tasks' worth of text) or lower {tokens_flag}, or serve the model with a longer --max-model-len")
    return report


def _refusal(client: openai.OpenAI, generator: OpenAIGenerator, dialect: Resolved, route: str,
             error: openai.APIStatusError, report: EndpointReport, tokens_flag: str) -> ModelError:
    message = _message(error)
    other = other_dialect(dialect)
    if error.status_code in _ROUTE_MISSING:
        if _route_works(client, generator, other):
            return EndpointError(
                f"the model server at {generator.base_url} has no {route} route ({error.status_code}: {message}), "
                f"which --dialect {dialect} needs; it answers on {route_of(other)}: pass --dialect {other}")
        return EndpointError(
            f"the model server at {generator.base_url} answers neither {route} ({error.status_code}: {message}) nor "
            f"{route_of(other)} for {generator.model!r}: is it an OpenAI-compatible server (--dialect {dialect})?")
    if error.status_code == 400 and dialect == "chat" and "chat template" in message.lower():
        return EndpointError(
            f"{generator.model!r} at {generator.base_url} has no chat template ({message}): pass --dialect semcoder "
            "for raw prompts, or serve it with a chat template (vllm serve --chat-template FILE)")
    if error.status_code == 400 and is_context_error(message):
        window = f" of {report.max_model_len} tokens" if report.max_model_len else ""
        return ContextWindowError(
            f"the longest prompt this run is known to send does not fit {generator.model!r}'s context window{window} "
            f"({generator.base_url}: {message}); show less context or lower {tokens_flag}")
    return ModelError(f"{generator.base_url}{route.removeprefix('/v1')} refused a one-token request "
                      f"({error.status_code}: {message}) with --dialect {dialect}")
