"""The load generator: closed loop (N connections, each sending as soon as it has an
answer) or open loop (a fixed arrival rate, latency counted from when each request was
due, so a stalled server cannot hide its tail by slowing the sender down).

One asyncio process on uvloop with its own HTTP client (http_client.py);
docs/benchmarks.md checks it against wrk on the same target.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httptools

from shardstack.bench.http_client import ConnectionClosed, HttpPool
from shardstack.bench.recording import Recording
from shardstack_kernel.tasks import cancel_and_wait

# The gateway answers `"status":"partial"` near the start of its body; so do the
# comparison apps. Looking for it costs a substring search, not a JSON parse.
_PARTIAL = b'"status":"partial"'
_HEAD = 64
DEFAULT_REQUEST_IDS = "bench"
_MIN_SLEEP_S = 0.001


@dataclass(frozen=True, slots=True)
class LoadPlan:
    url: str
    connections: int = 32
    rate: float | None = None  # requests per second; None is the closed loop
    duration_s: float = 10.0
    warmup_s: float = 2.0
    timeout_s: float = 10.0
    # False: a new connection per request, so each lands on whichever server process
    # accepts first rather than staying with the one it first reached.
    keep_alive: bool = True
    # X-Request-Id PREFIX-0000001, ... in sending order (the warm-up's PREFIX-w0000001, ...);
    # None sends none.
    request_ids: str | None = DEFAULT_REQUEST_IDS

    @property
    def mode(self) -> str:
        return "closed" if self.rate is None else "open"

    def describe(self) -> str:
        if self.rate is None:
            fresh = "" if self.keep_alive else ", a new one per request"
            return f"closed loop, {self.connections} connections{fresh}"
        return f"open loop, {self.rate:g}/s (up to {self.connections} connections)"


Tick = Callable[[float, Recording, bool], None]
"""Called about ten times a second with the seconds recorded so far, the recording, and
whether the recording is over (a last call with True)."""


Inspect = Callable[[bytes], None]
"""Given the body of each 200 answer in the recorded part, as it arrives."""


async def run_load(
    plan: LoadPlan,
    tick: Tick | None = None,
    measuring: Callable[[], None] | None = None,
    inspect: Inspect | None = None,
) -> Recording:
    """Warm up for `warmup_s` (not recorded), then record `duration_s` of load;
    `measuring` is called as the recorded part begins."""
    pool = HttpPool(plan.url, plan.connections, plan.keep_alive)
    try:
        warmup = Recording()
        if plan.warmup_s > 0:
            ids = _request_ids(plan, "w")
            await _phase(pool, plan, plan.warmup_s, warmup, None, None, ids)
        recording = Recording(warmup_sent=warmup.sent)
        if measuring is not None:
            measuring()
        ids = _request_ids(plan, "")
        await _phase(pool, plan, plan.duration_s, recording, tick, inspect, ids)
        return recording
    finally:
        await pool.aclose()


_Ids = Iterator[dict[str, str] | None]


def _request_ids(plan: LoadPlan, phase: str) -> _Ids:
    """Each request's headers, in sending order."""
    if plan.request_ids is None:
        return itertools.repeat(None)
    prefix = f"{plan.request_ids}-{phase}"
    return ({"x-request-id": f"{prefix}{number:07d}"} for number in itertools.count(1))


async def _phase(
    pool: HttpPool,
    plan: LoadPlan,
    duration_s: float,
    recording: Recording,
    tick: Tick | None,
    inspect: Inspect | None,
    ids: _Ids,
) -> None:
    started = time.perf_counter()
    stop_at = started + duration_s
    if plan.rate is None:
        senders = [
            asyncio.create_task(
                _closed_sender(pool, plan.timeout_s, stop_at, recording, inspect, ids)
            )
            for _ in range(plan.connections)
        ]
    else:
        senders = [asyncio.create_task(_open_sender(pool, plan, stop_at, recording, inspect, ids))]
    ticker = None if tick is None else asyncio.create_task(_ticks(started, recording, tick))
    try:
        await asyncio.gather(*senders)
    finally:
        recording.elapsed_s = time.perf_counter() - started
        if tick is not None and ticker is not None:
            await cancel_and_wait(ticker)
            tick(recording.elapsed_s, recording, True)


async def _ticks(started: float, recording: Recording, tick: Tick) -> None:
    while True:
        await asyncio.sleep(0.1)
        tick(time.perf_counter() - started, recording, False)


async def _closed_sender(
    pool: HttpPool,
    timeout_s: float,
    stop_at: float,
    recording: Recording,
    inspect: Inspect | None,
    ids: _Ids,
) -> None:
    while time.perf_counter() < stop_at:
        await _request(pool, timeout_s, time.perf_counter(), recording, inspect, next(ids))


async def _open_sender(
    pool: HttpPool,
    plan: LoadPlan,
    stop_at: float,
    recording: Recording,
    inspect: Inspect | None,
    ids: _Ids,
) -> None:
    """Start request i at start + i/rate whatever the answers do; each is its own task."""
    assert plan.rate is not None
    interval = 1.0 / plan.rate
    in_flight: set[asyncio.Task[None]] = set()
    due = time.perf_counter()
    while due < stop_at:
        now = time.perf_counter()
        if due > now:
            # The loop's timers count whole milliseconds: a shorter sleep returns at once,
            # and the sender would spin a core away from the server it measures. So at
            # rates past 1,000/s requests leave in batches, each up to 1 ms after it was
            # due (and timed from when it was due).
            await asyncio.sleep(max(due - now, _MIN_SLEEP_S))
        # Behind schedule (a late timer, a busy loop): send everything that is due now,
        # each timed from when it was due.
        now = time.perf_counter()
        while due <= now and due < stop_at:
            task = asyncio.create_task(
                _request(pool, plan.timeout_s, due, recording, inspect, next(ids))
            )
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            due += interval
    if in_flight:
        await asyncio.gather(*in_flight)


async def _request(
    pool: HttpPool,
    timeout_s: float,
    due: float,
    recording: Recording,
    inspect: Inspect | None,
    headers: dict[str, str] | None,
) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            status, body = await pool.get(headers)
    except TimeoutError:
        recording.failed("timeout")
        return
    except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
        recording.failed("connection reset")
        return
    except OSError:
        recording.failed("connect error")
        return
    except httptools.HttpParserError:
        recording.failed("malformed answer")
        return
    partial = status == 200 and _PARTIAL in body[:_HEAD]
    recording.answered(status, time.perf_counter() - due, partial)
    if inspect is not None and status == 200:
        inspect(body)
