"""The gateway worker's HTTP protocol: what is refused before the app sees it.

- An aggregate that admission refuses (gateway/admission.py) is answered 503 from the
  request's head, in the protocol: no ASGI scope reaches the app, no task is made, and
  the answer is bytes built once per reason. Through FastAPI the same refusal cost about
  0.8 ms of worker CPU, so under overload the refusals themselves took the CPU.
- A connection past `GATEWAY_MAX_CONNECTIONS` in this worker is answered 503 and closed.
- The limits every uvicorn port keeps (shardstack_kernel/http_protocol.py) with the
  gateway's settings: a head slower than `GATEWAY_HEADER_TIMEOUT_S`, or a body slower
  than `GATEWAY_BODY_TIMEOUT_S`, is answered 408 and cut, holding no permit.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from gateway.admission import ADMITTED, AGGREGATE_PATH, Admission
from gateway.overload import RETRY_AFTER_S, Overloaded, ShedReason
from shardstack_kernel.http_protocol import (
    HeadLimitedProtocol,
    Phase,
    closing,
    problem_answer,
)
from shardstack_kernel.request_id import REQUEST_ID_HEADER, request_id_or_new

if TYPE_CHECKING:
    from gateway.state import GatewayState

_AGGREGATE = AGGREGATE_PATH.encode()
_AGGREGATE_QUERY = _AGGREGATE + b"?"
_REQUEST_ID = REQUEST_ID_HEADER.encode()
_FIRST_PAUSE_MS = 5
# Past this much unread output a refused client is not reading its answers: cut it.
_MAX_UNREAD_BYTES = 1 << 20
# What a paced connection may send before its socket is paused too.
_MAX_HELD_BYTES = 64 * 1024


_RETRY_AFTER = b"retry-after: " + str(RETRY_AFTER_S).encode() + b"\r\n"
_SHED = {
    reason: problem_answer(503, str(Overloaded(reason)), _RETRY_AFTER) for reason in ShedReason
}


_TOO_MANY_CONNECTIONS = closing(
    problem_answer(
        503,
        "over capacity: this worker holds GATEWAY_MAX_CONNECTIONS client connections; retry later",
        _RETRY_AFTER,
    )
)


def refusal_pause_s(in_a_row: int, max_ms: int) -> float:
    """How long a connection's next request waits unread after its `in_a_row`-th refusal
    in a row: 5 ms, doubling, up to `max_ms` (0: never)."""
    doubled: int = _FIRST_PAUSE_MS << min(in_a_row - 1, 16)
    return min(doubled, max_ms) / 1000.0


class FrontDoorProtocol(HeadLimitedProtocol):
    _refused_in_a_row = 0
    # After a refusal: what arrives before `_paced_until` (loop clock) is held until then.
    _paced_until = 0.0
    _held: list[bytes] | None = None
    _held_paused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        gateway = self._gateway()
        self.timeouts = gateway.connection_timeouts
        super().connection_made(transport)
        if len(self.connections) > gateway.settings.max_connections:
            gateway.metrics.refused_connections["max_connections"].inc()
            self.stopped = True
            transport.write(_TOO_MANY_CONNECTIONS)
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._held = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._held is not None:
            self._hold(data)
        elif self._paced_until and self.loop.time() < self._paced_until:
            # Held in the protocol rather than by pausing the socket: a request that comes
            # after the pause costs nothing, and one that comes early a timer.
            self._held = []
            self._hold(data)
            self._unset_keepalive_if_required()  # a request came: not idle
            self.loop.call_at(self._paced_until, self._release_held)
        else:
            super().data_received(data)

    def _hold(self, data: bytes) -> None:
        assert self._held is not None
        self._held.append(data)
        if not self._held_paused and sum(map(len, self._held)) > _MAX_HELD_BYTES:
            self._held_paused = True
            self.flow.pause_reading()  # enough held: let the socket's buffers wait

    def _release_held(self) -> None:
        held, self._held = self._held, None
        if held is None or self.transport.is_closing():
            return
        if self._held_paused:
            self._held_paused = False
            self.flow.resume_reading()
        super().data_received(b"".join(held))

    def _gateway(self) -> GatewayState:
        state: GatewayState = self.app_state["gateway"]
        return state

    def timed_out(self, phase: Phase) -> None:
        reason = "header_timeout" if phase is Phase.HEAD else "body_timeout"
        self._gateway().metrics.refused_connections[reason].inc()

    def refuse_request(self) -> bool:
        """Admit an aggregate (counted in flight, marked in its scope) or answer its 503
        here; True if answered."""
        url = self.url
        if not (url == _AGGREGATE or url.startswith(_AGGREGATE_QUERY)):
            return False
        if self.parser.get_method() != b"GET":
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # pipelined behind an answer not yet sent: the app decides, in order
        started = time.perf_counter()
        admission: Admission = self._gateway().admission
        # Without `shards=` it calls every shard; otherwise its calls are known only once
        # parsed, and the permits judge them in the fan-out.
        calls = None if b"shards=" in url else admission.shard_count
        reason = admission.refusal(calls)
        if reason is None:
            self._refused_in_a_row = 0
            admission.enter()
            self.scope["state"][ADMITTED] = True
            return False
        admission.shed(reason, started)
        self._write_refusal(reason)
        return True

    def _write_refusal(self, reason: ShedReason) -> None:
        head, body = _SHED[reason]
        keep_alive = self.parser.should_keep_alive() and self.parser.get_http_version() != "1.0"
        request_id = self._request_id()
        self.transport.write(
            b"%sx-request-id: %s\r\n%s\r\n%s"
            % (head, request_id.encode(), b"" if keep_alive else b"connection: close\r\n", body)
        )
        if not keep_alive or self.transport.get_write_buffer_size() > _MAX_UNREAD_BYTES:
            self.transport.close()
            return
        # No response cycle ran, so none armed the idle timeout for the next request.
        self._unset_keepalive_if_required()
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        self._refused_in_a_row += 1
        pause_s = refusal_pause_s(
            self._refused_in_a_row, self._gateway().settings.refusal_pause_max_ms
        )
        self._paced_until = self.loop.time() + pause_s if pause_s else 0.0

    def _request_id(self) -> str:
        raw = next((value for name, value in self.headers if name == _REQUEST_ID), None)
        return request_id_or_new(raw)
