"""Where sandbox jobs run, chosen once: this machine's warm pool ("local") or a Ray cluster ("ray").

    with open_job_runner("ray", address="10.0.0.1:6379", workers=None, backend="local") as runner:
        runner.submit_job(job).result()

`executor_options` is the one declaration of the CLI's `--executor` / `--ray-address` pair; `semcoder eval`
and `semcoder data pyx|pyxr` use it (and `ExecutorChoice` is the typed form their configs carry). See
docs/scale.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import click
from pydantic import BaseModel, ConfigDict, Field

from sandbox._errors import SandboxError
from sandbox._models import Limits
from sandbox._pool import Pool
from sandbox.job import JobRunner

Executor = Literal["local", "ray"]
EXECUTORS: tuple[Executor, ...] = ("local", "ray")


class ExecutorChoice(BaseModel):
    """Where jobs run; `address` only for Ray (None: RAY_ADDRESS, a running local Ray, or a new one here)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    executor: Executor = Field("local", description="local: this machine's warm sandbox pool; ray: one pool per "
                               "node of a Ray cluster.")
    address: str | None = Field(None, description="The Ray head's HOST:PORT (--executor ray only).")


@contextmanager
def open_job_runner(executor: Executor | ExecutorChoice = "local", *, address: str | None = None,
                    workers: int | None = None, backend: str = "local",
                    limits: Limits | None = None) -> Iterator[JobRunner]:
    """A JobRunner, closed afterwards. `workers`: the local pool's size, or each Ray node's (default: its CPUs)."""
    if isinstance(executor, ExecutorChoice):
        executor, address = executor.executor, executor.address or address
    if executor == "local":
        if address:
            raise SandboxError("--ray-address is for --executor ray only")
        with Pool(workers, backend=backend, limits=limits) as pool:
            yield pool
    elif executor == "ray":
        if limits is not None:
            raise SandboxError("the Ray executor takes each job's own limits (no pool-wide limits)")
        from sandbox._ray import RayRunner

        runner = RayRunner(address, workers=workers, backend=backend)
        try:
            yield runner
        finally:
            runner.close()
    else:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")


def runner_workers(runner: JobRunner, default: int) -> int:
    """How many jobs the runner runs at once (a Pool's workers, all Ray nodes' together), for splitting work."""
    return getattr(runner, "workers", None) or default


def executor_options(command: Callable) -> Callable:
    """`--executor local|ray` and `--ray-address HOST:PORT`, handed to the command as one `executor:
    ExecutorChoice` argument (place it under `@click.command`, like any option)."""

    @functools.wraps(command)
    def with_choice(*args, executor_name: str, ray_address: str | None, **kwargs):
        if ray_address and executor_name != "ray":
            raise click.UsageError("--ray-address is for --executor ray")
        return command(*args, executor=ExecutorChoice(executor=executor_name, address=ray_address), **kwargs)

    with_choice = click.option(
        "--ray-address", "ray_address", default=None, metavar="HOST:PORT",
        help="The Ray cluster's head (--executor ray); default: RAY_ADDRESS, a Ray already running on this "
             "machine, or a new one-node Ray here.")(with_choice)
    return click.option(
        "--executor", "executor_name", type=click.Choice(EXECUTORS), default="local", show_default=True,
        help="Where sandbox jobs run: this machine's warm pool, or one pool per node of a Ray cluster "
             "(--workers is then per node).")(with_choice)
