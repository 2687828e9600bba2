"""The `semcoder` console script.

Subcommands are contributed by each package through the ``semcoder.commands`` entry-point group
(see pyproject.toml), so this module never imports evals/ or training/ and the import direction
stays one way.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, distribution, entry_points

import click

_GROUP = "semcoder.commands"
_DISTRIBUTION = "semcoder-agent"


class _PluginGroup(click.Group):
    """A click group whose commands are loaded lazily from entry points."""

    def _entry_points(self) -> dict[str, object]:
        return {ep.name: ep for ep in entry_points(group=_GROUP)}

    def _own_entry_point(self, name: str) -> object | None:
        """This distribution's own command `name`, read from its metadata alone: scanning every installed
        distribution's entry points costs each `semcoder` start tens of ms in a large environment."""
        try:
            own = distribution(_DISTRIBUTION).entry_points.select(group=_GROUP, name=name)
        except PackageNotFoundError:  # run from a checkout that is not installed
            return None
        return next(iter(own), None)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._entry_points()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry = self._own_entry_point(cmd_name) or self._entry_points().get(cmd_name)
        if entry is None:
            return None
        try:
            return entry.load()  # type: ignore[attr-defined]
        except ImportError as exc:
            return _unavailable(cmd_name, exc)


def _unavailable(name: str, error: ImportError) -> click.Command:
    """Stands in for a subcommand whose module cannot import (usually a missing optional extra)."""
    reason = f"`semcoder {name}` is unavailable: {error}. Is the right extra installed (pip install -e '.[...]')?"

    def fail() -> None:
        raise click.ClickException(reason)

    return click.Command(name, callback=fail, help=f"(unavailable: {error})", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


@click.group(cls=_PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="semcoder-agent")
def cli() -> None:
    """SemCoder Agent: run code in a sandbox, trace it, reason about the bug, patch it."""


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="semcoder")


if __name__ == "__main__":
    main(sys.argv[1:])
