"""What can go wrong with a fleet, as types a test can catch."""

from __future__ import annotations

from shardstack_kernel.validation import InvalidInput


class FleetError(Exception):
    """Anything the fleet could not do; the message is one line a person can act on."""


class FleetStartError(FleetError):
    """The shards could not be started (a port taken, a shard that exited, too slow);
    nothing the attempt started is left running."""


class InvalidRequest(InvalidInput, FleetError):
    """Refused before anything changed, naming each field at fault (`errors`): by this
    library before any request, or by a shard's 422."""


class Unauthorised(FleetError):
    """A shard refused the admin token (401)."""


class ShardUnreachable(FleetError):
    """A shard's admin port did not answer."""


class ShardRefused(FleetError):
    """A shard answered with an error other than a 422 or a 401 (a taken fault id: 409)."""

    def __init__(self, shard: int, status: int, detail: str) -> None:
        super().__init__(f"shard {shard}: HTTP {status}: {detail}")
        self.shard = shard
        self.status = status
        self.detail = detail
