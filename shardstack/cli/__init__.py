"""The `shardstack` command, one module per command group. Errors of every kind end
here, in `main`, as one line and a non-zero exit."""

from __future__ import annotations

import sys

import click

from shardstack import __version__
from shardstack.cli.bench import bench
from shardstack.cli.fault import fault
from shardstack.cli.scenario import scenario_group
from shardstack.cli.token import token
from shardstack.cli.up import up
from shardstack.control.client import GatewayError
from shardstack.control.engine_token import StackError
from shardstack.launcher.supervisor import LaunchError
from shardstack_kernel.validation import InvalidInput


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shardstack")
def cli() -> None:
    """A shard simulator and fan-out gateway: watch and measure fan-out under stress."""


for _command in (up, fault, scenario_group, bench, token):
    cli.add_command(_command)


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
    except (LaunchError, GatewayError, StackError) as exc:
        _fail(str(exc), 1)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), 1)
    else:
        if isinstance(code, int) and code:
            sys.exit(code)


def _fail(message: str, code: int) -> None:
    click.echo(f"shardstack: {message}", err=True)
    sys.exit(code)
