"""The hot path: call every selected shard at once, bounded by a semaphore and a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import orjson

from gateway.results import ShardOutcome, ShardResult
from gateway.shards import Shard
from gateway.upstream import (
    UpstreamClient,
    UpstreamConnectError,
    UpstreamError,
    UpstreamResetError,
)


class FanOut:
    """Per-worker fan-out: at most `semaphore_size` shard calls in flight at once.

    Every call ends by the aggregate's deadline, and a call that holds a permit also
    ends after `shard_timeout_s`; so `run` never outlives the deadline.
    """

    def __init__(self, client: UpstreamClient, semaphore_size: int, shard_timeout_s: float) -> None:
        self._client = client
        self._semaphore = asyncio.Semaphore(semaphore_size)
        self._shard_timeout_s = shard_timeout_s

    async def run(self, shards: Sequence[Shard], deadline: float) -> list[ShardResult]:
        """One result per shard, in the order given; `deadline` is on the loop's clock."""
        return await asyncio.gather(*(self._call(shard, deadline) for shard in shards))

    async def _call(self, shard: Shard, deadline: float) -> ShardResult:
        loop = asyncio.get_running_loop()
        # Deadlines are on the loop's clock; latencies on perf_counter, because uvloop's
        # clock only moves in whole milliseconds.
        started = time.perf_counter()
        try:
            async with asyncio.timeout_at(deadline) as scope, self._semaphore:
                scope.reschedule(min(deadline, loop.time() + self._shard_timeout_s))
                response = await self._client.get(shard.data_url)
        except TimeoutError:
            return self._failed(shard, started, ShardOutcome.TIMEOUT)
        except UpstreamConnectError as exc:
            return self._failed(shard, started, ShardOutcome.UNREACHABLE, str(exc))
        except UpstreamResetError as exc:
            return self._failed(shard, started, ShardOutcome.RESET, str(exc))
        except UpstreamError as exc:
            return self._failed(shard, started, ShardOutcome.ERROR, str(exc))
        latency_ms = (time.perf_counter() - started) * 1000.0
        if response.status != 200:
            return ShardResult(
                shard.id, ShardOutcome.ERROR, latency_ms, detail=f"HTTP {response.status}"
            )
        records = _records(response.body, shard.id)
        if records is None:
            return ShardResult(shard.id, ShardOutcome.ERROR, latency_ms, detail="malformed body")
        return ShardResult(shard.id, ShardOutcome.OK, latency_ms, len(records), data=records)

    @staticmethod
    def _failed(
        shard: Shard, started: float, outcome: ShardOutcome, detail: str | None = None
    ) -> ShardResult:
        latency_ms = (time.perf_counter() - started) * 1000.0
        return ShardResult(shard.id, outcome, latency_ms, detail=detail)


def _records(body: bytes, shard_id: int) -> list[object] | None:
    """The shard's records if the body is the shard's answer, else None."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict) or payload.get("shard") != shard_id:
        return None
    records = payload.get("records")
    return records if isinstance(records, list) else None
