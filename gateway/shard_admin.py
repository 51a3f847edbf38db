"""The gateway's control-plane client: sends admin calls to the shards' admin ports.

Separate from the data-path client, so admin traffic never takes a pooled data
connection or a semaphore permit, and a shard whose data port is down stays reachable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from gateway.shards import Shard

ADMIN_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class AdminReply:
    """One shard's answer to an admin call, or why there was none."""

    shard: int
    status: int | None
    body: Any
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        if self.error is not None:
            return self.error
        if isinstance(self.body, dict) and "detail" in self.body:
            return f"HTTP {self.status}: {self.body['detail']}"
        return f"HTTP {self.status}"


class ShardAdmin:
    def __init__(self, token: SecretStr) -> None:
        self._client = httpx.AsyncClient(
            timeout=ADMIN_TIMEOUT_S,
            trust_env=False,
            headers={"authorization": f"Bearer {token.get_secret_value()}"},
            # Connections kept for less than a shard keeps an idle admin connection
            # (shard_sim's ADMIN_KEEP_ALIVE_S), so none is reused as the shard closes it.
            limits=httpx.Limits(
                max_connections=64, max_keepalive_connections=64, keepalive_expiry=2.0
            ),
        )

    async def each(
        self, shards: Sequence[Shard], method: str, path: str, json: Any = None
    ) -> list[AdminReply]:
        """The same call to every shard at once; one reply per shard, in order."""
        return await asyncio.gather(*(self.one(shard, method, path, json) for shard in shards))

    async def one(self, shard: Shard, method: str, path: str, json: Any = None) -> AdminReply:
        try:
            response = await self._client.request(method, f"{shard.admin_url}{path}", json=json)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return AdminReply(shard.id, None, None, f"admin port unreachable: {reason}")
        try:
            body = response.json()
        except ValueError:
            body = None
        return AdminReply(shard.id, response.status_code, body)

    async def aclose(self) -> None:
        await self._client.aclose()
