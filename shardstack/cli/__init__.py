"""The `shardstack` command, one module per command group. Errors of every kind end
here, in `main`, as one line and a non-zero exit."""

from __future__ import annotations

import importlib
import sys

import click

from shardstack import __version__
from shardstack.errors import OperatorError
from shardstack_kernel.validation import InvalidInput

# Each command's module, imported only when that command runs (or help lists them all):
# `bench` alone pulls in aiohttp, httpx and the launcher, half a second that
# `shardstack fault list` need not pay. Click's documented pattern for lazy subcommands.
_COMMANDS = {
    "bench": "shardstack.cli.bench:bench",
    "fault": "shardstack.cli.fault:fault",
    "scenario": "shardstack.cli.scenario:scenario_group",
    "token": "shardstack.cli.token:token",
    "up": "shardstack.cli.up:up",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, name = _COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(module), name)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shardstack")
def cli() -> None:
    """A shard simulator and fan-out gateway: watch and measure fan-out under stress."""


def main() -> None:
    """Entry point: run the CLI and turn every expected failure into one line."""
    try:
        # Outside standalone mode click returns a `click.exceptions.Exit`'s code.
        code = cli.main(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("shardstack: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except InvalidInput as exc:
        _fail(f"invalid input: {exc}", 2)
    except OperatorError as exc:
        _fail(str(exc), 1)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), 1)
    else:
        if isinstance(code, int) and code:
            sys.exit(code)


def _fail(message: str, code: int) -> None:
    click.echo(f"shardstack: {message}", err=True)
    sys.exit(code)
