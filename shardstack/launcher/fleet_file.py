"""The fleet file: where a running stack's shards are and the token that controls them,
written once every shard is ready and removed when the stack stops, so that a test or a
service of the operator's own finds the shards without reading the launcher's output
(`shardstack up --fleet-file`, `shardstack.testing.Fleet.attach_file`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from shardstack_kernel.admin_token import write_private

FLEET_FILE_NAME = "fleet.json"


class FleetShard(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    url: str  # the data port's base URL: GET {url}/data
    admin_url: str  # the admin port's: /admin/faults, /admin/latency, /metrics
    zone: str | None = None


class FleetDescription(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    shards: tuple[FleetShard, ...]
    token: str
    # The file every shard appends its decisions to, if the stack keeps one.
    decision_log: Path | None = None
    # The launcher's process: stopping it (SIGTERM) stops every shard.
    pid: int

    def write(self, path: Path) -> None:
        """Whole or not at all, readable by its owner only: it holds the token."""
        write_private(path, self.model_dump_json(indent=2))

    @classmethod
    def read(cls, path: Path) -> FleetDescription:
        return cls.model_validate_json(path.read_bytes())
