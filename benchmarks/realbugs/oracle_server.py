"""An OpenAI-compatible completions endpoint on loopback that answers every refine prompt with the upstream fix.

It knows the fix, not the tool: it reads the code the prompt shows (the Buggy Solution block), finds which
function that is, and if the case's upstream fix changed that function it answers with the fixed versions of
every function the fix changed in that file (plus the imports the fixed file added); otherwise it answers with
the shown code unchanged, as a model that finds nothing wrong there would. So a run with this model measures
the tool's plumbing: localization, prompts, splicing, test selection, verdicts.

    server = OracleServer(case).start(); ...; server.stop()      # base URL: server.url + "/v1"
"""

from __future__ import annotations

import ast
import re
import socket
import textwrap
import threading
import time
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from benchmarks.realbugs import oracle

MODEL = "oracle"
_CODE = re.compile(r"### Buggy Solution\n```python\n(.*?)\n```", re.S)


class _Body(BaseModel):
    model: str
    prompt: str | list[str]
    n: int = 1
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False


def shown_function(prompt: str) -> str | None:
    """The qualified name of the function a refine prompt shows (`Class.method` under a class header)."""
    match = _CODE.search(prompt)
    if match is None:
        return None
    try:
        tree = ast.parse(textwrap.dedent(match.group(1)))
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
            if methods:
                return f"{node.name}.{methods[0].name}"
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node.name
    return None


def answer(case: dict, prompt: str) -> str:
    shown = shown_function(prompt)
    match = _CODE.search(prompt)
    code = match.group(1) if match else ""
    fixed = [f for f in case["fixed_functions"] if f.get("kind", "function") == "function" and f.get("in_buggy", True)]
    hit = next((f for f in fixed if shown and (f["qualname"] == shown or f["qualname"].endswith("." + shown)
                                               or shown.endswith("." + f["qualname"]))), None)
    if hit is not None:
        code = fixed_code(case, hit["file"], [f["qualname"] for f in fixed if f["file"] == hit["file"]])
    return ("[MONOLOGUE]\n### Execution Simulation\nThe failing test runs the code shown.\n"
            "### Root Cause Analysis\nThe upstream fix says what was wrong.\n[/MONOLOGUE]\n\n"
            f"[Refined]\n```python\n{code}\n```\n[/Refined]")


def fixed_code(case: dict, file: str, qualnames: list[str]) -> str:
    """The fixed versions of `qualnames` of `file` (methods under their class's header), after the imports the
    fixed file has and the buggy file does not."""
    fixed_source, buggy_source = oracle.fixed_file(case, file), oracle.buggy_file(case, file)
    imports = _imports(fixed_source) - _imports(buggy_source)
    by_class: dict[str, list[str]] = {}
    parts = sorted(imports)
    for qualname in qualnames:
        try:
            text = textwrap.dedent(oracle.function_source(fixed_source, qualname))
        except oracle.OracleError:
            continue
        owner, _, _ = qualname.rpartition(".")
        if owner:
            by_class.setdefault(owner, []).append(textwrap.indent(text, "    "))
        else:
            parts.append(text)
    for owner, methods in by_class.items():
        parts.append(f"class {owner.rsplit('.', 1)[-1]}:\n" + "\n".join(methods))
    return "\n\n".join(part.rstrip("\n") for part in parts)


def _imports(source: str) -> set[str]:
    return {ast.unparse(n) for n in ast.parse(source).body if isinstance(n, ast.Import | ast.ImportFrom)}


def build_app(case: dict, calls: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "realbugs"}]}

    @app.post("/v1/completions")
    def completions(body: _Body) -> dict[str, Any]:
        prompts = body.prompt if isinstance(body.prompt, list) else [body.prompt]
        choices = []
        for prompt in prompts:
            calls.append(shown_function(prompt) or "?")
            text = answer(case, prompt)
            choices += [{"index": len(choices), "text": text, "finish_reason": "stop", "logprobs": None}
                        for _ in range(body.n)]
        usage = {"prompt_tokens": sum(len(p) // 4 for p in prompts),
                 "completion_tokens": sum(len(c["text"]) // 4 for c in choices)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return {"id": "oracle", "object": "text_completion", "created": int(time.time()), "model": MODEL,
                "choices": choices, "usage": usage}

    return app


class OracleServer:
    """uvicorn in a background thread on a free loopback port."""

    def __init__(self, case: dict) -> None:
        self.calls: list[str] = []  # the function each prompt showed
        self._server = uvicorn.Server(uvicorn.Config(build_app(case, self.calls), log_level="warning"))
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def start(self) -> OracleServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the oracle server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
