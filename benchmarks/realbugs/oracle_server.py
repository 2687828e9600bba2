"""An OpenAI-compatible completions endpoint on loopback that answers every refine prompt with the upstream fix.

It knows the fix, not the tool: it reads the code the prompt shows (the Buggy Solution block). If that shows a
function the upstream fix changed, or a module constant / class attribute the fix changed (shown as context), or
the prompt asks for a name the fix adds to a file, it answers with everything the fix changed in that file: the
fixed versions of its changed and new functions, changed module constants and class attributes, new classes, and
the imports the fixed file added. Otherwise it answers with the shown code unchanged, as a model that finds
nothing wrong there would. So a run with this model measures the tool's plumbing: localization, prompts,
splicing, test selection, verdicts.

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
    """The qualified name of the first function a refine prompt shows (`Class.method` under a class header)."""
    shown = shown_functions(prompt)
    return shown[0] if shown else None


def shown_functions(prompt: str) -> list[str]:
    """Every function a refine prompt shows, in order (the focus, then the suspects shown with it)."""
    match = _CODE.search(prompt)
    if match is None:
        return []
    try:
        tree = ast.parse(textwrap.dedent(match.group(1)))
    except SyntaxError:
        return []
    shown = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            shown += [f"{node.name}.{n.name}" for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            shown.append(node.name)
    return shown
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


_ADDS = re.compile(r"uses `(\w+)`, which `([^`]+)` does not define")


def answer(case: dict, prompt: str) -> str:
    """The upstream fix of the file the prompt is about, where the prompt shows a unit the fix changed (a
    function, or a module constant / class attribute it shows as context) or asks for a name the fix adds;
    otherwise the shown code unchanged."""
    match = _CODE.search(prompt)
    code = match.group(1) if match else ""
    file = _fixed_file_of(case, prompt, code)
    if file is not None:
        code = fixed_code(case, file)
    return ("[MONOLOGUE]\n### Execution Simulation\nThe failing test runs the code shown.\n"
            "### Root Cause Analysis\nThe upstream fix says what was wrong.\n[/MONOLOGUE]\n\n"
            f"[Refined]\n```python\n{code}\n```\n[/Refined]")


def _fixed_file_of(case: dict, prompt: str, code: str) -> str | None:
    units = case["fixed_functions"]
    adds = _ADDS.search(prompt)
    if adds is not None:
        name, file = adds.groups()  # only where the fix does add that name there
        if not any(u["file"] == file for u in units):
            return None
        return file if name in _top_names(oracle.fixed_file(case, file)) - _top_names(oracle.buggy_file(case, file)) \
            else None
    for shown in shown_functions(prompt):
        for unit in units:
            qualname = unit["qualname"]
            if unit.get("kind", "function") == "function" and unit.get("in_buggy", True) and (
                    qualname == shown or qualname.endswith("." + shown) or shown.endswith("." + qualname)):
                return unit["file"]
        # A method of a class the fix adds methods to (tqdm's __bool__ beside the __len__ shown).
        owner = shown.rpartition(".")[0]
        for unit in units:
            if owner and unit.get("in_buggy") is False and unit["qualname"].rpartition(".")[0] == owner:
                return unit["file"]
    # A changed module constant or class attribute the prompt shows as context.
    shown_names = _assigned_names(code)
    for unit in units:
        if unit.get("kind") in ("module", "class-body") and shown_names & _changed_names(case, unit):
            return unit["file"]
    return None


def _top_names(source: str) -> set[str]:
    """Names a module binds at its top level, in if/try/with blocks too (a def per Python version)."""
    names: set[str] = set()
    for statement in ast.parse(source).body:
        nodes = ast.walk(statement) if isinstance(statement, ast.If | ast.Try | ast.With) else [statement]
        for n in nodes:
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(n.name)
            elif isinstance(n, ast.Assign):
                names |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    return names


def _assigned_names(code: str) -> set[str]:
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return set()
    return {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}


def _changed_names(case: dict, unit: dict) -> set[str]:
    """The names a module / class-body unit's hunks assign in the buggy file."""
    tree = ast.parse(oracle.buggy_file(case, unit["file"]))
    body = tree.body if unit["kind"] == "module" else next(
        (n.body for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == unit["qualname"].rsplit(".", 1)[-1]), [])
    lines = {line for first, last in unit["hunks"] for line in range(first, last + 1)}
    return {t.id for n in body if isinstance(n, ast.Assign) and lines & set(range(n.lineno, n.end_lineno + 1))
            for t in n.targets if isinstance(t, ast.Name)}


def fixed_code(case: dict, file: str) -> str:
    """Everything the fix changed in `file`, as the fixed commit has it: the imports the fixed file added, its
    changed or new module-level assignments, its changed and new functions (methods under their class's
    header, with the class's changed or new attributes)."""
    fixed_source, buggy_source = oracle.fixed_file(case, file), oracle.buggy_file(case, file)
    fixed_tree, buggy_tree = ast.parse(fixed_source), ast.parse(buggy_source)
    parts = sorted(_imports(fixed_source) - _imports(buggy_source))
    parts += _changed_assignments(fixed_source, fixed_tree.body, buggy_source, buggy_tree.body)
    parts += _new_blocks(fixed_source, fixed_tree.body, buggy_source)
    by_class: dict[str, list[str]] = {}
    top = {n.name for n in fixed_tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    in_blocks = {n.name for block in fixed_tree.body if isinstance(block, ast.If | ast.Try | ast.With)
                 for n in ast.walk(block) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)} - top
    for unit in case["fixed_functions"]:
        if unit["file"] != file or unit.get("kind", "function") != "function" or unit.get("fixed_start") is None:
            continue
        try:
            text = textwrap.dedent(oracle.function_source(fixed_source, unit["qualname"]))
        except oracle.OracleError:
            continue
        if unit["qualname"] in in_blocks:
            continue  # a def inside a top-level if/try, answered with its block
        owner, _, _ = unit["qualname"].rpartition(".")
        if owner:
            by_class.setdefault(owner, []).append(textwrap.indent(text, "    "))
        else:
            parts.append(text)
    for unit in case["fixed_functions"]:  # class attributes a class-body hunk changed
        if unit["file"] == file and unit.get("kind") == "class-body":
            by_class.setdefault(unit["qualname"], [])
    fixed_classes = {n.name: n for n in ast.walk(fixed_tree) if isinstance(n, ast.ClassDef)}
    buggy_classes = {n.name: n for n in ast.walk(buggy_tree) if isinstance(n, ast.ClassDef)}
    for owner, methods in by_class.items():
        name = owner.rsplit(".", 1)[-1]
        if name not in buggy_classes and name in fixed_classes:  # a class the fix adds: the whole class
            node = fixed_classes[name]
            parts.append(textwrap.dedent("\n".join(fixed_source.splitlines()[node.lineno - 1:node.end_lineno])))
            continue
        attributes = _changed_assignments(fixed_source, fixed_classes[name].body, buggy_source,
                                          buggy_classes[name].body) if name in fixed_classes else []
        members = [textwrap.indent(a, "    ") for a in attributes] + methods
        if members:
            parts.append(f"class {name}:\n" + "\n".join(members))
    return "\n\n".join(part.rstrip("\n") for part in parts)


def _changed_assignments(fixed_source: str, fixed_body: list, buggy_source: str, buggy_body: list) -> list[str]:
    """The fixed body's plain assignments of every name whose assignments differ from (or are missing in) the
    buggy body's (all of a name's assignments, in order: the splice pairs them up one by one)."""
    def texts(source: str, body: list) -> dict[str, list[str]]:
        lines, found = source.splitlines(), {}
        for n in body:
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                found.setdefault(n.targets[0].id, []).append(textwrap.dedent("\n".join(lines[n.lineno - 1:n.end_lineno])))
        return found

    before = texts(buggy_source, buggy_body)
    return [text for name, all_texts in texts(fixed_source, fixed_body).items() if before.get(name) != all_texts
            for text in all_texts]


def _new_blocks(fixed_source: str, fixed_body: list, buggy_source: str) -> list[str]:
    """The fixed module's top-level if/try/with blocks that the buggy module does not have as they are."""
    lines = fixed_source.splitlines()
    texts = ["\n".join(lines[n.lineno - 1:n.end_lineno]) for n in fixed_body if isinstance(n, ast.If | ast.Try | ast.With)]
    return [text for text in texts if text not in buggy_source and "__name__" not in text.splitlines()[0]]


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
