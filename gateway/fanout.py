"""The hot path: call every selected shard at once, bounded by permits and a deadline,
through each shard's circuit breaker, with a budgeted retry of failures that allow one."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence

import orjson

from gateway.breaker import Breakers
from gateway.hedging import Hedging, LoserFate
from gateway.metrics import GatewayMetrics
from gateway.overload import Overloaded, ShedReason
from gateway.permits import Permits
from gateway.results import ShardOutcome, ShardResult
from gateway.retries import RETRYABLE_STATUSES, Retries
from gateway.server_timing import shard_timing
from gateway.shards import Shard
from gateway.throttle import Throttles
from gateway.upstream import (
    CallTiming,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamError,
    UpstreamResetError,
    UpstreamResponse,
)
from shardstack_kernel.request_id import ATTEMPT_HEADER, REQUEST_ID_HEADER

# What a breaker counts as the shard failing; a skipped or shed call says nothing about it.
_BREAKER_FAILURES = frozenset(
    {ShardOutcome.TIMEOUT, ShardOutcome.ERROR, ShardOutcome.RESET, ShardOutcome.UNREACHABLE}
)
# A shard's answers that blame the request, not the shard (not 408 or 429: those say the
# shard is slow or full).
_REQUEST_ERRORS = frozenset(range(400, 500)) - {408, 429}


class FanOut:
    """Per-worker fan-out: at most as many shard calls in flight as there are permits.

    Every call ends by the aggregate's deadline, and a call that holds a permit also
    ends after `shard_timeout_s`; so `run` never outlives the deadline. A request the
    permits do not admit, or whose call waits too long for one, raises `Overloaded`.
    """

    def __init__(
        self,
        client: UpstreamClient,
        permits: Permits,
        shard_timeout_s: float,
        metrics: GatewayMetrics,
        hedging: Hedging | None = None,
        breakers: Breakers | None = None,
        retries: Retries | None = None,
        throttles: Throttles | None = None,
    ) -> None:
        self._client = client
        self._permits = permits
        self._shard_timeout_s = shard_timeout_s
        self._metrics = metrics
        self._hedging = hedging
        self._breakers = breakers
        self._retries = retries
        self._throttles = throttles
        # Hedged calls that lost, running on to their end (`_let_finish`).
        self._finishing: set[asyncio.Task[None]] = set()

    async def run(
        self,
        shards: Sequence[Shard],
        deadline: float,
        request_id: str,
        headers: Mapping[int, Mapping[str, str]] | None = None,
    ) -> list[ShardResult]:
        """One result per shard, in the order given; `deadline` is on the loop's clock.
        Every call carries `request_id` and its attempt number; `headers` adds request
        headers for some shards (per-request faults)."""
        give_up_at = self._permits.admit(len(shards))
        extra = headers or {}
        # Past the deadline a call times out anyway: waiting for a permit is then no overload.
        permit_by = give_up_at if give_up_at < deadline else None
        results = await asyncio.gather(
            *(
                self._call(shard, deadline, permit_by, _Sends(request_id, extra.get(shard.id)))
                for shard in shards
            )
        )
        if any(result.status is ShardOutcome.SHED for result in results):
            raise Overloaded(ShedReason.PERMIT_WAIT)
        return results

    async def _call(
        self,
        shard: Shard,
        deadline: float,
        permit_by: float | None,
        headers: _Sends,
    ) -> ShardResult:
        breaker = None if self._breakers is None else self._breakers[shard.id]
        if breaker is not None and not breaker.allow():
            self._metrics.shard_skipped(shard.id, ShardOutcome.CIRCUIT_OPEN)
            return ShardResult(shard.id, ShardOutcome.CIRCUIT_OPEN, 0.0, detail=breaker.skip_detail)
        throttle = None
        if self._throttles is not None:
            throttle = self._throttles[shard.id]
            if not throttle.allow(time.monotonic(), random.random()):
                if breaker is not None:
                    breaker.abandon()
                self._metrics.shard_skipped(shard.id, ShardOutcome.THROTTLED)
                detail = self._throttles.skip_detail
                return ShardResult(shard.id, ShardOutcome.THROTTLED, 0.0, detail=detail)
        result = None
        try:
            result = await self._attempt(shard, deadline, permit_by, headers)
            retries = self._retries
            if retries is not None:
                retries.called()
                time_left_s = deadline - asyncio.get_running_loop().time()
                if result.retryable and retries.may_retry(time_left_s):
                    first = result
                    retried = await self._attempt(shard, deadline, permit_by, headers)
                    # With no permit for the retry, the first try's answer stands.
                    if retried.status is not ShardOutcome.SHED:
                        result = retried
                        result.latency_ms += first.latency_ms
                        result.attempts = 2
                        if result.status not in (ShardOutcome.OK, first.status):
                            result.detail = _joined(result.detail, f"first try: {first.status}")
        finally:
            if breaker is not None:
                if result is None or result.status is ShardOutcome.SHED or result.refused_request:
                    breaker.abandon()
                else:
                    breaker.record(result.status not in _BREAKER_FAILURES)
            if throttle is not None:
                if result is None or result.status is ShardOutcome.SHED:
                    throttle.withdraw()
                elif result.status is ShardOutcome.OK or result.refused_request:
                    throttle.accepted(time.monotonic())
        if result.status is ShardOutcome.SHED:
            self._metrics.shard_skipped(shard.id, ShardOutcome.SHED)
            return result
        seconds = result.latency_ms / 1000.0
        self._metrics.shard_call(shard.id, result.status, seconds)
        if self._hedging is not None:
            self._hedging.called(shard.id, result.status is ShardOutcome.OK, seconds)
        return result

    async def _attempt(
        self,
        shard: Shard,
        deadline: float,
        permit_by: float | None,
        headers: _Sends,
    ) -> ShardResult:
        loop = asyncio.get_running_loop()
        permits = self._permits
        timing = CallTiming()
        # Deadlines are on the loop's clock; latencies on perf_counter, because uvloop's
        # clock only moves in whole milliseconds.
        started = time.perf_counter()
        # One timer per call (a profile put timers at a tenth of a worker's time): a
        # free permit lets the call's own deadline be set at once; a queued call's timer
        # runs to the earlier of its deadline and its permit wait, then to the call's.
        holding = permits.take_free()
        try:
            if holding:
                call_deadline = timer_at = min(deadline, loop.time() + self._shard_timeout_s)
            else:
                timer_at = deadline if permit_by is None else permit_by
            async with asyncio.timeout_at(timer_at) as scope:
                if not holding:
                    await permits.acquire(None)
                    holding = True
                    call_deadline = min(deadline, loop.time() + self._shard_timeout_s)
                    scope.reschedule(call_deadline)
                try:
                    response = await self._get(shard, headers, timing, call_deadline)
                finally:
                    permits.release()
        except TimeoutError:
            if not holding and permit_by is not None:
                return _result(shard, started, timing, ShardOutcome.SHED, "no permit in time")
            detail = None if timing.headers_at is None else "headers arrived, body did not"
            return _result(shard, started, timing, ShardOutcome.TIMEOUT, detail)
        except UpstreamConnectError as exc:
            result = _result(shard, started, timing, ShardOutcome.UNREACHABLE, str(exc))
            result.retryable = True
            return result
        except UpstreamResetError as exc:
            result = _result(shard, started, timing, ShardOutcome.RESET, str(exc))
            result.retryable = True
            return result
        except UpstreamError as exc:
            return _result(shard, started, timing, ShardOutcome.ERROR, str(exc))
        if response.status != 200:
            result = _result(shard, started, timing, ShardOutcome.ERROR, f"HTTP {response.status}")
            result.retryable = response.status in RETRYABLE_STATUSES
            result.refused_request = response.status in _REQUEST_ERRORS
            return self._served(result, response, timing)
        records = _records(response.body, shard.id)
        if records is None:
            result = _result(shard, started, timing, ShardOutcome.ERROR, "malformed body")
            return self._served(result, response, timing)
        result = _result(shard, started, timing, ShardOutcome.OK)
        result.records, result.data = len(records), records
        return self._served(result, response, timing)

    def _served(
        self, result: ShardResult, response: UpstreamResponse, timing: CallTiming
    ) -> ShardResult:
        """The shard's served and injected times on `result`, and what the call took
        beyond what it served."""
        result.served_ms, result.injected_ms = shard_timing(response.server_timing)
        if result.served_ms is None:
            self._metrics.server_timing_unknown.inc()
        elif not timing.hedged:  # a hedge's answer started later than the call
            self._metrics.shard_overhead(result.shard, (result.latency_ms - result.served_ms) / 1e3)
        return result

    async def _get(
        self, shard: Shard, headers: _Sends, timing: CallTiming, call_deadline: float
    ) -> UpstreamResponse:
        hedging = self._hedging
        threshold_s = None if hedging is None else hedging.threshold_s(shard.id)
        if hedging is None or threshold_s is None:
            return await self._client.get(shard.data_url, headers.next(), timing)
        primary = asyncio.create_task(self._client.get(shard.data_url, headers.next(), timing))
        backup: asyncio.Task[UpstreamResponse] | None = None
        loser: asyncio.Task[UpstreamResponse] | None = None
        try:
            done, _ = await asyncio.wait({primary}, timeout=threshold_s)
            if done:
                return primary.result()
            if not await hedging.permit(self._permits):
                return await primary
            backup_timing = CallTiming()
            backup = asyncio.create_task(
                self._client.get(shard.data_url, headers.next(), backup_timing)
            )
            winner = await _first_answer(primary, backup)
            loser = backup if winner is primary else primary
            if winner is backup:
                hedging.won()
                timing.headers_at = backup_timing.headers_at
                timing.hedged = True
            # The loser is not interrupted (as Finagle's backup requests): cancelling it
            # would close its connection, and a new one costs 2-3 pooled calls. It runs on
            # to its own deadline with the hedge's permit; the caller releases its own.
            self._let_finish(loser, call_deadline, hedging)
            return winner.result()
        finally:
            if loser is None:  # the caller gave up first: both calls end here
                await _cancelled(primary)
                if backup is not None:
                    await _cancelled(backup)
                    self._permits.release()

    def _let_finish(
        self, loser: asyncio.Task[UpstreamResponse], deadline: float, hedging: Hedging
    ) -> None:
        if loser.done():
            hedging.lost(LoserFate.ENDED)
            self._permits.release()
            return
        task = asyncio.create_task(self._finish(loser, deadline, hedging))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(
        self, loser: asyncio.Task[UpstreamResponse], deadline: float, hedging: Hedging
    ) -> None:
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.gather(loser, return_exceptions=True)
            hedging.lost(LoserFate.FINISHED)
        except TimeoutError:
            hedging.lost(LoserFate.CUT)
        finally:
            await _cancelled(loser)
            self._permits.release()


class _Sends:
    """The headers of each call to one shard for one aggregate: the request id, the
    attempt (0 for the first call, then 1, 2, ... for hedges and retries in the order they
    are sent) and any per-request fault headers."""

    __slots__ = ("_attempt", "_extra", "_request_id")

    def __init__(self, request_id: str, extra: Mapping[str, str] | None) -> None:
        self._request_id = request_id
        self._extra = extra
        self._attempt = 0

    def next(self) -> dict[str, str]:
        headers = {REQUEST_ID_HEADER: self._request_id, ATTEMPT_HEADER: str(self._attempt)}
        self._attempt += 1
        if self._extra:
            headers.update(self._extra)
        return headers


async def _cancelled(task: asyncio.Task[UpstreamResponse]) -> None:
    """Cancel `task` if it still runs, and wait until it has ended."""
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _first_answer(
    primary: asyncio.Task[UpstreamResponse], backup: asyncio.Task[UpstreamResponse]
) -> asyncio.Task[UpstreamResponse]:
    """The first call to bring an answer; if both fail, the primary (its error is raised)."""
    pending = {primary, backup}
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in (primary, backup):
            if task in done and task.exception() is None:
                return task
    return primary


def _joined(*details: str | None) -> str:
    return "; ".join(detail for detail in details if detail)


def _result(
    shard: Shard,
    started: float,
    timing: CallTiming,
    outcome: ShardOutcome,
    detail: str | None = None,
) -> ShardResult:
    latency_ms = (time.perf_counter() - started) * 1000.0
    headers_ms = None if timing.headers_at is None else (timing.headers_at - started) * 1000.0
    return ShardResult(shard.id, outcome, latency_ms, headers_ms=headers_ms, detail=detail)


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
