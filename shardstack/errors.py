"""The operator's failures that the CLI reports as one line and exit status 1.

Here, apart from the modules that raise them, so that `shardstack.cli.main` catches them
without importing those modules (and what they import) for every command.
"""

from __future__ import annotations


class OperatorError(Exception):
    """A failure whose message is one line for the operator: the stack would not start,
    the gateway or the engine would not answer or refused."""
