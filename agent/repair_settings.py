"""A repair's settings, declared once for every front end.

`RepairSettings` is what a user sets for one repair. `semcoder repair` builds its flags from these fields
(`cli_parameters`) and the API's request body (agent/api/schemas.py) is this model plus the task's inputs, so a
setting has one name, default, bound and description, is checked by the same validators, and is refused with the
same message (`describe`). The loop's knobs reuse RunConfig's own fields (default, lower bound, description), the
task's settings reuse Task's; the upper bounds added here are what one user may ask of one run.

`prepare` turns settings and a loaded task into a run's inputs the same way for both: the test selection, env,
problem and entry point applied to the task, the project's interpreter detected (or the given one checked).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin

import click
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

import sandbox
from agent.chat_prompts import AGENTS_FILE, agents_instructions
from agent.edits import EditSetting
from agent.environment import Environment, detect
from agent.models import Dialect, resolve_dialect
from agent.state import FeedbackMode, Patcher, RunConfig
from agent.tasks import Task, TaskError, with_targets

_RUN = RunConfig.model_fields
_TASK = Task.model_fields
MODEL_SPEC = r"^(none|(openai|vllm|transformers):.+)$"
REFUSED = "refused"  # the error type of a refusal that words itself (names its setting as the command line does)


@dataclass(frozen=True)
class Flag:
    """How `semcoder repair` spells a setting where it is not --FIELD-NAME (name None: the arguments after `--`)."""

    name: str | None
    metavar: str | None = None
    from_file: bool = False  # the flag names a file whose text is the value (the API takes the text itself)


def refused(message: str) -> PydanticCustomError:
    """A validation error whose message is the whole story, printed as is by the CLI and the API."""
    return PydanticCustomError(REFUSED, "{message}", {"message": message})


class RepairSettings(BaseModel):
    """How to repair: the loop's budgets and model, which tests, and the environment they run in."""

    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, _RUN["model"], Field(max_length=500, pattern=MODEL_SPEC), Flag("--model", "BACKEND:NAME")]
    patcher: Annotated[Patcher | None, _RUN["patcher"], Field(
        None, description=f"{_RUN['patcher'].description} Default: mutation without a model, both with one.")]
    feedback: Annotated[FeedbackMode, _RUN["feedback"]]
    max_iterations: Annotated[int, _RUN["max_iterations"], Field(le=200)]
    max_tokens: Annotated[int, _RUN["max_tokens"], Field(le=10_000_000)]
    max_time_s: Annotated[float, _RUN["max_time_s"], Field(le=7200), Flag("--max-time", "SECONDS")]
    samples: Annotated[int, _RUN["samples"], Field(le=64)]
    mutants_per_step: Annotated[int, _RUN["mutants_per_step"], Field(le=200)]
    temperature: Annotated[float, _RUN["temperature"], Field(le=2)]
    top_p: Annotated[float, _RUN["top_p"]]
    max_new_tokens: Annotated[int, _RUN["max_new_tokens"], Field(le=32_768)]
    test_timeout_s: Annotated[float, _RUN["test_timeout_s"], Field(le=120), Flag("--test-timeout", "SECONDS")]
    allow_suspicious: Annotated[bool, _RUN["allow_suspicious"]]
    edit_format: Annotated[EditSetting, _RUN["edit_format"]]
    dialect: Annotated[Dialect, _RUN["dialect"]]
    show_trace: Annotated[bool, _RUN["show_trace"]]
    system_prompt: Annotated[str | None, _RUN["system_prompt"], Field(max_length=100_000),
                             Flag("--system-prompt-file", "PATH", from_file=True)]
    python: Annotated[str | None, _RUN["python"], Field(min_length=1, max_length=4096), Flag("--python", "PATH")]
    env: Annotated[dict[str, str], _TASK["env"], Field(max_length=200), Flag("--env", "NAME=VALUE")]
    pytest_args: Annotated[list[str], Field(
        default_factory=list, max_length=1000,
        description="The test selection, as pytest arguments (node ids, paths, -k EXPR, -o ...; on the command "
        "line: what follows `--`). Node ids (file::test) are the targets: their files run whole to guard against "
        "regressions, and a test there that already failed and is not a target is left alone. Empty: every failing "
        "test of pytest's own discovery."), Flag(None)]
    problem: Annotated[str, _TASK["problem"], Field(max_length=100_000)]
    entry_point: Annotated[str | None, _TASK["entry_point"], Field(max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"),
                           Flag("--entry-point", "NAME")]

    @field_validator("env", mode="before")
    @classmethod
    def _env_pairs(cls, value: object) -> object:
        """NAME=VALUE strings (the command line's --env, repeatable) become the mapping."""
        if not isinstance(value, list | tuple):
            return value
        env = {}
        for pair in value:
            name, sep, text = str(pair).partition("=")
            if not sep or not name:
                raise refused(f"--env {pair!r}: expected NAME=VALUE")
            env[name] = text
        return env

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if name in sandbox.RESERVED_ENV:
                raise refused(f"--env {name}: the sandbox sets {name} itself (a private directory, the project's "
                              "interpreter)")
            if not name or "=" in name or "\0" in name or "\0" in value:
                raise refused(f"--env {name!r}: not a valid environment variable (a name without '=' or NUL, a "
                              "value without NUL)")
        return env

    @field_validator("python")
    @classmethod
    def _a_path(cls, python: str | None) -> str | None:
        if python is not None and "\0" in python:
            raise refused(f"--python {python!r}: not a path (it holds a NUL byte)")
        return python

    @model_validator(mode="after")
    def _patcher_has_a_model(self) -> RepairSettings:
        if self.patcher in ("model", "both") and self.model == "none":
            raise refused(f"--patcher {self.patcher} needs a model: pass --model BACKEND:NAME")
        return self

    @model_validator(mode="after")
    def _system_prompt_is_for_chat(self) -> RepairSettings:
        if self.system_prompt is not None and self.model != "none" and \
                resolve_dialect(self.dialect, self.model) == "semcoder":
            raise refused("--system-prompt-file replaces the chat dialect's system message; SemCoder's raw prompts "
                          f"have none (the model {self.model!r} is prompted with --dialect semcoder): pass --dialect "
                          "chat, or leave the system prompt out")
        return self

    def run_config(self, python: str | None) -> RunConfig:
        """The run's config, with the interpreter `prepare` settled on."""
        knobs = self.model_dump(include=set(_RUN) - {"patcher", "python"})
        return RunConfig(**knobs, patcher=self.patcher or ("mutation" if self.model == "none" else "both"),
                         python=python)

    def applied_to(self, task: Task) -> Task:
        """The task with this selection, environment, problem and entry point."""
        if self.pytest_args:
            task = with_targets(task, self.pytest_args)
        update: dict[str, Any] = {"env": dict(self.env)} if self.env else {}
        if self.problem:
            update["problem"] = self.problem
        if self.entry_point is not None:
            update["entry_point"] = _entry_point(task, self.entry_point)
        return task.model_copy(update=update) if update else task


def _entry_point(task: Task, name: str) -> str:
    if task.kind != "function":
        raise TaskError("--entry-point applies to function-level tasks (a file and its tests) only")
    [target] = task.editable
    defined = {node.name for node in ast.parse(task.files[target]).body
               if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    if name not in defined:
        raise TaskError(f"--entry-point {name!r} is not a function defined in {target}")
    return name


class RunSetup(BaseModel):
    """Which environment and test selection a run used: `semcoder repair --json` and the API's runs report it."""

    python: str | None = Field(None, description="The interpreter or venv the tests run with, given or detected "
                               "(None: semcoder's own). `isolation.python` is the executable and "
                               "`isolation.python_version` its version.")
    targets: Annotated[list[str], _TASK["targets"]]
    test_paths: Annotated[list[str], _TASK["test_paths"]]
    env: list[str] = Field(default_factory=list, description="The names of the variables set for the tests "
                           "(their values are not echoed).")

    @classmethod
    def of(cls, task: Task, config: RunConfig) -> RunSetup:
        return cls(python=config.python, targets=task.targets, test_paths=task.test_paths, env=sorted(task.env))


class Prepared(NamedTuple):
    task: Task
    config: RunConfig
    environment: Environment


def prepare(settings: RepairSettings, task: Task, *, activated: bool = True) -> Prepared:
    """The run's task and config; TaskError where the settings do not fit the task or the interpreter is not one.

    `activated`: whether $VIRTUAL_ENV may be the project's environment (the command line; not a server)."""
    task = settings.applied_to(task)
    task = _with_instructions_note(task, settings)
    environment = detect(Path(task.root) if task.root else None, settings.python, activated=activated)
    if environment.python is not None:
        try:  # what the sandbox will ask of it, asked now: a bad interpreter is refused before the run starts
            sandbox.project_python(environment.python)
        except sandbox.SandboxError as exc:
            raise TaskError(str(exc)) from None
    return Prepared(task, settings.run_config(environment.python), environment)


def _with_instructions_note(task: Task, settings: RepairSettings) -> Task:
    """A project's AGENTS.md goes into the chat dialect's system message: say so, and where it is cut."""
    if task.kind != "project" or AGENTS_FILE not in task.files or settings.model == "none" or \
            settings.patcher == "mutation" or resolve_dialect(settings.dialect, settings.model) != "chat":
        return task
    _, cut = agents_instructions(task.files)
    note = cut or f"{AGENTS_FILE} ({len(task.files[AGENTS_FILE])} characters) is appended to the model's system message"
    return task.model_copy(update={"notes": [*task.notes, note]})


def parse(values: Mapping[str, Any]) -> RepairSettings:
    """Settings from given values (absent ones take their defaults); TaskError with `describe`'s message."""
    try:
        return RepairSettings.model_validate(dict(values))
    except ValidationError as exc:
        raise TaskError(describe(exc.errors())) from None


def describe(errors: Iterable[Mapping[str, Any]]) -> str:
    """Validation errors in one line, as `semcoder repair` prints them and the API's 422 `detail` says them: a
    refusal as worded; otherwise the setting as the command line spells it, then pydantic's message."""
    said = []
    for error in errors:
        if error.get("type") == REFUSED:
            said.append(str(error["msg"]))
            continue
        loc = [part for part in error.get("loc", ()) if isinstance(part, str | int)]
        if loc[:1] == ["body"] and len(loc) > 1:  # FastAPI's prefix for a request body's fields
            loc = loc[1:]
        if error.get("type") == "json_invalid":
            loc = []
        where = _spelling(str(loc[0])) + "".join(f"[{part!r}]" for part in loc[1:]) if loc else ""
        said.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return "; ".join(said)


def _spelling(name: str) -> str:
    field = RepairSettings.model_fields.get(name)
    if field is None:
        return name
    flag = _flag(name, field.metadata)
    return flag.name or name


def _flag(name: str, metadata: Iterable[object]) -> Flag:
    given = next((m for m in metadata if isinstance(m, Flag)), None)
    return given or Flag("--" + name.replace("_", "-"))


def cli_parameters(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds RepairSettings to a click command: the pytest arguments after `--`, then one option per setting, with
    its description as help and its default shown. Values arrive as typed (validated by `parse`, as the API's
    body is) and None, () or False when not given."""
    parameters: list[Callable[[Any], Any]] = []
    for name, field in RepairSettings.model_fields.items():
        flag = _flag(name, field.metadata)
        if flag.name is None:
            parameters.append(click.argument(name, nargs=-1, type=click.UNPROCESSED))
            continue
        kind = _unwrapped(field.annotation)
        help_text = field.description or ""
        if flag.from_file:
            parameters.append(click.option(flag.name, name, default=None, metavar=flag.metavar or "PATH",
                                           callback=file_text, help=f"{help_text} Read from the file PATH."))
        elif kind is bool:
            parameters.append(click.option(flag.name, name, is_flag=True, default=False, help=help_text))
        elif get_origin(kind) is dict:
            parameters.append(click.option(flag.name, name, multiple=True, metavar=flag.metavar,
                                           help=f"{help_text} Repeatable."))
        else:
            choices = get_args(kind) if get_origin(kind) is Literal else ()
            metavar = flag.metavar or (f"[{'|'.join(choices)}]" if choices else _METAVARS.get(kind, "TEXT"))
            shown = field.get_default(call_default_factory=True)
            suffix = f"  [default: {shown}]" if shown not in (None, "") else ""
            parameters.append(click.option(flag.name, name, default=None, metavar=metavar, help=help_text + suffix))
    for parameter in reversed(parameters):
        command = parameter(command)
    return command


_METAVARS = {int: "INTEGER", float: "NUMBER", str: "TEXT"}


def file_text(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """A click callback: an option that names a file stands for that file's text (--system-prompt-file)."""
    if value is None:
        return None
    try:
        return Path(value).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {value}: {exc}", context, parameter) from None


def _unwrapped(annotation: Any) -> Any:
    """X from X | None."""
    args = get_args(annotation)
    if type(None) in args:
        [inner] = [arg for arg in args if arg is not type(None)]
        return inner
    return annotation


def given(values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a command line gave (`cli_parameters`' values that are not the unset ones)."""
    return {name: list(value) if isinstance(value, tuple) else value for name, value in values.items()
            if name in RepairSettings.model_fields and value is not None and value is not False and value != ()}
