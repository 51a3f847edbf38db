"""The shard's data port: HTTP/1.1 on httptools, serving `GET /data` and `GET /healthz`.

Its own small protocol rather than an ASGI app under uvicorn, because on this port the
shard's cost is the product's error: a user sets "answers in 10 ms" and every microsecond
the shard spends is time the simulation did not ask for. Measured, this path costs less
CPU per answer than a bare ASGI app under uvicorn (docs/design.md). The admin port
stays Starlette under uvicorn (shard_sim.server).

What it does: keep-alive and pipelined requests, answered in order; the limits every port
keeps (shardstack_kernel.http_protocol): a cap on a request's head (431), on the requests
read ahead, and timers on a slow head, a slow body and an idle connection, swept once a
second by the port (shard_sim.server); problem+json for what it does not serve;
`Server-Timing` on every answer. An answer with nothing to shape it is written in one
piece by a timer; one a fault delivers (late, dribbled, reset, garbage) runs as a task
over `ProtocolWire`, the `Wire` the fault kinds speak to.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import logging
import math
import socket
import struct
import time
from collections.abc import Sequence
from http import HTTPStatus
from typing import cast

import httptools
import orjson

from shard_sim.capacity import Capacity, Overflow, Ticket
from shard_sim.data import Prepared, Refused, prepare
from shard_sim.effects.answer import Answer
from shard_sim.state import ShardState
from shardstack_kernel.faults import REQUEST_FAULT_HEADER
from shardstack_kernel.http_protocol import (
    HEAD_TOO_LARGE,
    MAX_PIPELINED,
    PIPELINE_RESUME_AT,
    ConnectionTimeouts,
    HeadCount,
    Phase,
)
from shardstack_kernel.problem import PROBLEM_MEDIA_TYPE, problem_body
from shardstack_kernel.request_id import ATTEMPT_HEADER, REQUEST_ID_HEADER
from shardstack_kernel.topology import ADMIN_PORT_OFFSET

_log = logging.getLogger("shard_sim.data")

_FAULT_HEADER = REQUEST_FAULT_HEADER.lower().encode()
_REQUEST_ID = REQUEST_ID_HEADER.encode()
_ATTEMPT = ATTEMPT_HEADER.encode()
# Requests read ahead of the one being answered before reading pauses (pipelining); it
# resumes at PIPELINE_RESUME_AT, and past MAX_PIPELINED the connection reads no more.
_PAUSE_PIPELINED_AT = 16
_JSON = b"application/json"
_PROBLEM = PROBLEM_MEDIA_TYPE.encode()
_ALLOW_GET = ((b"allow", b"GET"),)
_ADMIN_HINT = (
    f"; the admin API and /metrics are on the admin port (data port + {ADMIN_PORT_OFFSET})"
)
Headers = Sequence[tuple[bytes, bytes]]


class _Request:
    __slots__ = (
        "attempt",
        "authorization",
        "fault_header",
        "keep_alive",
        "method",
        "received_at",
        "request_id",
        "url",
    )

    def __init__(self) -> None:
        self.url = b""
        self.method = b""
        self.authorization: str | None = None
        self.fault_header: str | None = None
        self.request_id: str | None = None
        self.attempt: str | None = None
        self.keep_alive = True
        self.received_at = 0.0


class _Date:
    """The Date header, formatted once a second (as uvicorn does)."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = email.utils.formatdate(second, usegmt=True).encode()
        return self._value


_date = _Date()


class DataProtocol(asyncio.Protocol):
    """One connection to a shard's data port."""

    def __init__(self, shard: ShardState, connections: set[DataProtocol]) -> None:
        self._shard = shard
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._request = _Request()
        self._head = HeadCount()
        self._in_body = False
        # When the head (of the first request: the connection) or the body began.
        self._since = self._loop.time()
        self._stopped = False  # reads nothing more; closes after the answers it owes
        self._no_request_yet = True
        self._waiting: collections.deque[_Request] = collections.deque()
        self._current: _Request | None = None  # the request being answered
        self._busy = False  # an answer is being prepared or delivered
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        # The answer's place in a shard of finite capacity, and when its service ends.
        self._ticket: Ticket | None = None
        self._service_ends = 0.0
        self._reading = True
        self._can_write = asyncio.Event()
        self._can_write.set()
        self.lost: asyncio.Future[None] = self._loop.create_future()
        self.last_active = self._loop.time()

    @property
    def transport(self) -> asyncio.Transport:
        assert self._transport is not None
        return self._transport

    @property
    def idle(self) -> bool:
        return not self._busy and not self._head.in_head and not self._in_body and not self._waiting

    def overdue(self, now: float, timeouts: ConnectionTimeouts) -> Phase | None:
        """The part of a request this connection has waited for too long, if any: a head
        (a connection's first: since it opened) or a body."""
        if self._stopped:
            return None
        if self._in_body:
            return Phase.BODY if now - self._since > timeouts.body_s else None
        if self._head.in_head or self._no_request_yet:
            return Phase.HEAD if now - self._since > timeouts.header_s else None
        return None

    def time_out(self, phase: Phase, timeouts: ConnectionTimeouts) -> None:
        self._refuse_and_close(408, timeouts.detail(phase))

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
        if not self.lost.done():
            self.lost.set_result(None)
        self._can_write.set()
        ticket, self._ticket = self._ticket, None
        if ticket is not None:
            # A worker stays busy until the service time has passed, client or not.
            remaining_s = self._service_ends - time.perf_counter()
            gate = self._shard.capacity
            if ticket.in_service and remaining_s > 0:
                self._loop.call_later(remaining_s, gate.release, ticket)
            else:
                gate.release(ticket)

    def data_received(self, data: bytes) -> None:
        if self._stopped:
            return
        head = self._head
        head.feeding()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Answered over HTTP/1.1 as RFC 9110 (7.8) allows; the parser reads no more.
            self._stop()
            return
        except httptools.HttpParserError as exc:
            # httptools wraps what a callback raised (the head count's refusal) in its own.
            if self._stopped:  # too many read ahead (on_message_complete)
                return
            if head.too_large:
                self._refuse_and_close(431, HEAD_TOO_LARGE)
            else:
                self._refuse_and_close(400, f"not a valid HTTP/1.1 request: {exc}")
            return
        if head.buffered_too_much(len(data)):
            self._refuse_and_close(431, HEAD_TOO_LARGE)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()
        self._next()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._request = _Request()
        self._head.begin()
        if self._no_request_yet:
            self._no_request_yet = False  # its head's time runs from the connection
        else:
            self._since = self._loop.time()

    def on_url(self, url: bytes) -> None:
        self._head.add(len(url))
        self._request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head.add(len(name) + len(value) + 4)
        name = name.lower()
        if name == b"authorization":
            self._request.authorization = value.decode("latin-1")
        elif name == _REQUEST_ID:
            self._request.request_id = value.decode("latin-1")
        elif name == _ATTEMPT:
            self._request.attempt = value.decode("latin-1")
        elif name == _FAULT_HEADER:
            self._request.fault_header = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._head.end()
        self._in_body = True
        self._since = self._loop.time()
        request = self._request
        request.method = self._parser.get_method()
        request.keep_alive = self._parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self._in_body = False
        request = self._request
        # perf_counter, not the loop's clock: uvloop's is cached and counts whole ms.
        request.received_at = time.perf_counter()
        self.last_active = self._loop.time()
        self._waiting.append(request)
        if len(self._waiting) > _PAUSE_PIPELINED_AT and self._reading:
            self._reading = False
            self.transport.pause_reading()
        if len(self._waiting) > MAX_PIPELINED:
            _log.warning("more than %d pipelined requests: reading stopped", MAX_PIPELINED)
            self._stop()
            raise _PipelineFull  # stops the parser in the data it is reading
        self._next()

    # Answering, one request at a time

    def _next(self) -> None:
        if self._busy or not self._waiting or not self._can_write.is_set():
            return
        if self._transport is None or self._transport.is_closing():
            return
        if not self._reading and not self._stopped and len(self._waiting) <= PIPELINE_RESUME_AT:
            self._reading = True
            self.transport.resume_reading()
        request = self._waiting.popleft()
        self._busy = True
        self._current = request
        path = request.url.partition(b"?")[0]
        if path == b"/data" and request.method == b"GET":
            try:
                self._data(request)
            except Exception:  # never a connection left without its answer
                _log.exception("a /data request failed")
                self._write_problem(request, 500, "internal error; see the shard's log")
        elif path == b"/healthz" and request.method == b"GET":
            state = self._shard
            body = orjson.dumps(
                {"status": "ok", "shard": state.shard_id, "zone": state.zone, "pid": state.pid}
            )
            self._write(request, 200, _JSON, body, [])
        elif path in (b"/data", b"/healthz"):
            method = request.method.decode("latin-1")
            self._write_problem(request, 405, f"{method} is not served here; use GET", _ALLOW_GET)
        else:
            where = path.decode("latin-1")
            hint = _ADMIN_HINT if path.startswith((b"/admin", b"/metrics")) else ""
            self._write_problem(request, 404, f"no route {where!r} on a shard's data port{hint}")

    def _data(self, request: _Request) -> None:
        try:
            prepared = prepare(
                self._shard,
                request.fault_header,
                request.authorization,
                request.request_id,
                request.attempt,
            )
        except Refused as exc:
            body = problem_body(exc.status, exc.detail, exc.errors)
            self._write(request, exc.status, _PROBLEM, body, [])
            return
        gate = self._shard.capacity
        if gate.limits is None:
            self._when_due(request, prepared)
            return
        ticket = gate.arrive(lambda: self._serve(request, prepared))
        if ticket is None:
            self._overflow(request, gate.limits)
            return
        self._ticket = ticket
        if ticket.in_service:
            self._serve(request, prepared)

    def _serve(self, request: _Request, prepared: Prepared) -> None:
        """A worker has taken the request: its delay is its service time from now."""
        if self._transport is None or self._transport.is_closing() or self._ticket is None:
            return  # the client left while it waited
        now = time.perf_counter()
        self._service_ends = now + prepared.delay_s
        if self._ticket.queued:
            waited_ms = (now - self._ticket.arrived) * 1000.0
            prepared.timing.insert(0, f"queue;dur={waited_ms:.3f}")
        prepared.delay_s += now - request.received_at
        self._when_due(request, prepared)

    def _overflow(self, request: _Request, limits: Capacity) -> None:
        action = limits.overflow
        if action is Overflow.RESET:
            reset(self.transport)
        elif action is Overflow.HANG:
            pass  # busy until the client leaves
        else:
            detail = (
                f"shard {self._shard.shard_id} is at capacity: {limits.workers} in service "
                f"and {limits.queue} waiting"
            )
            retry_after = ((b"retry-after", b"%d" % limits.retry_after_s),)
            self._write_problem(request, int(action.value), detail, retry_after)

    def _when_due(self, request: _Request, prepared: Prepared) -> None:
        """Write the answer once its delay has passed since the request was read: never
        before (the loop's timers count whole milliseconds, so a timer is rounded up and
        re-armed if it fires early), at most about a millisecond after."""
        self._timer = None
        remaining_s = prepared.delay_s - (time.perf_counter() - request.received_at)
        if remaining_s > 0:
            self._timer = self._loop.call_later(
                _timer_s(remaining_s), self._when_due, request, prepared
            )
            return
        answer = prepared.answer
        if answer.delivery is not None:
            self._task = self._loop.create_task(self._deliver(request, prepared))
            return
        content_type = answer.content_type.encode()
        self._write(
            request, answer.status, content_type, answer.body, answer.headers, prepared.timing
        )

    async def _deliver(self, request: _Request, prepared: Prepared) -> None:
        wire = ProtocolWire(self, request, prepared.timing)
        try:
            await prepared.answer.deliver(wire)
        except (ConnectionError, asyncio.CancelledError):
            self.transport.abort()
            return
        except Exception:
            _log.exception("a fault failed to deliver its answer")
            self.transport.abort()
            return
        self._task = None
        if not wire.complete:
            if not self.transport.is_closing():
                self.transport.close()
            return
        self._shard.metrics.served.observe(time.perf_counter() - request.received_at)
        self._done(request)

    def _write(
        self,
        request: _Request,
        status: int,
        content_type: bytes,
        body: bytes,
        headers: Headers,
        timing: list[str] | None = None,
    ) -> None:
        if self.transport.is_closing():
            return
        head = self.head(request, status, content_type, len(body), headers, timing)
        self.transport.write(head + body)
        if timing is not None:
            self._shard.metrics.served.observe(time.perf_counter() - request.received_at)
        self._done(request)

    def _write_problem(
        self, request: _Request, status: int, detail: str, headers: Headers = ()
    ) -> None:
        body = problem_body(status, detail)
        self._write(request, status, _PROBLEM, body, headers)

    def _done(self, request: _Request) -> None:
        self._busy = False
        self._current = None
        ticket, self._ticket = self._ticket, None
        if ticket is not None:
            self._shard.capacity.release(ticket)
        self.last_active = self._loop.time()
        if not request.keep_alive:
            self.transport.close()
            return
        self._next()

    def head(
        self,
        request: _Request,
        status: int,
        content_type: bytes,
        length: int,
        headers: Headers,
        timing: list[str] | None,
    ) -> bytes:
        """The status line and headers, with `Server-Timing` totalled at this moment."""
        lines = [
            b"HTTP/1.1 %d %s" % (status, _reason(status)),
            b"date: " + _date.now(),
            b"content-type: " + content_type,
            b"content-length: %d" % length,
        ]
        if timing is not None:
            total_ms = (time.perf_counter() - request.received_at) * 1000.0
            entries = ", ".join([*timing, f"total;dur={total_ms:.3f}"])
            lines.append(b"server-timing: " + entries.encode())
        lines.extend(name + b": " + value for name, value in headers)
        if not request.keep_alive:
            lines.append(b"connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def _refuse_and_close(self, status: int, detail: str) -> None:
        if self.transport.is_closing():
            return
        _log.warning("data port: %s", detail)
        if self._busy or self._waiting:  # answers are owed: this one would overtake them
            self._stop()
            return
        self._stopped = True
        body = problem_body(status, detail)
        request = _Request()
        request.keep_alive = False
        head = self.head(request, status, _PROBLEM, len(body), [], None)
        self.transport.write(head + body)
        self.transport.close()

    def _stop(self) -> None:
        """Read nothing more, and close after the answers owed."""
        self._stopped = True
        if self._reading:
            self._reading = False
            self.transport.pause_reading()
        last = self._waiting[-1] if self._waiting else self._current if self._busy else None
        if last is None:
            self.transport.close()
        else:
            last.keep_alive = False

    async def drained(self) -> None:
        await self._can_write.wait()


class _PipelineFull(Exception):
    pass


def _timer_s(seconds: float) -> float:
    return math.ceil(seconds * 1000.0) / 1000.0


_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


def _reason(status: int) -> bytes:
    return _REASONS.get(status, b"Unknown")


class ProtocolWire:
    """`Wire` over one request of a `DataProtocol` connection."""

    def __init__(self, protocol: DataProtocol, request: _Request, timing: list[str]) -> None:
        self._protocol = protocol
        self._request = request
        self._timing = timing
        self.complete = False

    async def start(self, answer: Answer) -> None:
        protocol = self._protocol
        head = protocol.head(
            self._request,
            answer.status,
            answer.content_type.encode(),
            len(answer.body),
            answer.headers,
            self._timing,
        )
        protocol.transport.write(head)
        await protocol.drained()

    async def body(self, chunk: bytes, more: bool) -> None:
        transport = self._protocol.transport
        if transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        if chunk:
            transport.write(chunk)
        if not more:
            self.complete = True
        await self._protocol.drained()

    async def disconnected(self) -> None:
        await self._protocol.lost

    def write_raw(self, data: bytes) -> None:
        self._protocol.transport.write(data)

    def closing(self) -> bool:
        return self._protocol.transport.is_closing()

    async def close(self) -> None:
        self._protocol.transport.close()
        await asyncio.sleep(0)

    async def reset(self) -> None:
        reset(self._protocol.transport)
        await asyncio.sleep(0)


def reset(transport: asyncio.Transport) -> None:
    """Close with a TCP reset (RST), not an orderly FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
