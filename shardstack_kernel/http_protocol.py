"""uvicorn's httptools protocol with the bounds uvicorn leaves out; the gateway's port and
the shards' admin ports serve through it (the shard data port has its own protocol, with
the same limits, from this module).

- **Heads**: a request's line and headers are at most `MAX_HEAD_BYTES`, else 431 and the
  connection closes (uvicorn sets no such cap with httptools, only with h11).
- **Pipelining**: uvicorn queues every pipelined request and reads on after each answer,
  however many wait. Here reading stays paused while more than `PIPELINE_RESUME_AT` wait;
  past `MAX_PIPELINED` waiting, the connection reads nothing more and closes after the
  answers it owes (a client retries what was not answered, RFC 9112 section 9.3.2).
- **Timers**: a request's head must arrive within `header_s` of its first byte (of the
  connection, for its first request), its body within `body_s` of its head, else 408 and
  the connection closes; an idle connection closes after uvicorn's keep-alive, which bytes
  that begin no request (stray CRLFs) no longer restart.
- **Upgrade** is ignored, as RFC 9110 section 7.8 allows: the request is answered over
  HTTP/1.1 and the connection then closes (the parser reads nothing after it).

An answer the protocol writes itself never overtakes one the app still owes: with an
answer pending, the connection stops reading and closes after it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shardstack_kernel.problem import PROBLEM_MEDIA_TYPE, problem_body

MAX_HEAD_BYTES = 16 * 1024
# httptools buffers a header until it is whole before it is handed over; this bounds that
# buffer, counted coarsely by what arrives while one request's head is incomplete.
MAX_BUFFERED_HEAD_BYTES = 4 * MAX_HEAD_BYTES
HEAD_TOO_LARGE = f"request line and headers are larger than {MAX_HEAD_BYTES} bytes"
# Requests read ahead of the one being answered: reading resumes only when no more than
# PIPELINE_RESUME_AT wait, and a connection with MAX_PIPELINED waiting reads no more.
MAX_PIPELINED = 64
PIPELINE_RESUME_AT = 8


@dataclass(frozen=True, slots=True)
class ConnectionTimeouts:
    """How long a client may take to send a request's head and its body, in seconds."""

    header_s: float = 10.0
    body_s: float = 10.0

    def detail(self, phase: Phase) -> str:
        if phase is Phase.HEAD:
            return f"the request's line and headers did not arrive within {self.header_s:g}s"
        return f"the request's body did not arrive within {self.body_s:g}s of its head"


class Phase(Enum):
    """What a connection's timer waits for."""

    HEAD = "head"
    BODY = "body"


def problem_answer(status: int, detail: str, headers: bytes = b"") -> tuple[bytes, bytes]:
    """A problem answer written by a protocol itself, built once: its head up to its
    `headers` (no blank line yet, so a connection's own headers can follow) and its body."""
    body = problem_body(status, detail)
    head = (
        b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())
        + b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n"
        + b"content-length: %d\r\n" % len(body) + headers
    )  # fmt: skip
    return head, body


def closing(answer: tuple[bytes, bytes]) -> bytes:
    """A `problem_answer` whose connection then closes, as bytes to write."""
    head, body = answer
    return head + b"connection: close\r\n\r\n" + body


_HEAD_TOO_LARGE_ANSWER = closing(problem_answer(431, HEAD_TOO_LARGE))


class HeadTooLarge(Exception):
    """Raised in a parser callback: the request's head passed `MAX_HEAD_BYTES`."""


class HeadCount:
    """The size of the request head being parsed, for both protocols: counted exactly from
    the parser's callbacks (`begin`, then `add` for the line and each header, `end`), and,
    coarsely, the bytes that arrived while one head stayed incomplete (`feeding`, then
    `buffered_too_much` after the parser has had them), which httptools holds unseen
    until a header is whole."""

    __slots__ = ("_buffered", "_size", "_was_in_head", "began", "in_head")

    def __init__(self) -> None:
        self._size = self._buffered = 0
        self.in_head = self._was_in_head = False
        self.began = False  # a request began in the data being parsed

    def feeding(self) -> None:
        self._was_in_head = self.in_head
        self.began = False

    def begin(self) -> None:
        self._size = self._buffered = 0
        self.in_head = self.began = True

    def add(self, size: int) -> None:
        self._size += size
        if self._size > MAX_HEAD_BYTES:
            raise HeadTooLarge

    def end(self) -> None:
        self.in_head = False

    @property
    def too_large(self) -> bool:
        return self._size > MAX_HEAD_BYTES

    def buffered_too_much(self, size: int) -> bool:
        """Whether, with `size` more bytes all of one head begun before them, the head
        has had more than `MAX_BUFFERED_HEAD_BYTES`."""
        if self.in_head and self._was_in_head and not self.began:
            self._buffered += size
        return self._buffered > MAX_BUFFERED_HEAD_BYTES


class _PipelineFull(Exception):
    pass


class _PipelineFlow(FlowControl):
    """uvicorn's flow control, except that reading stays paused while the connection's
    pipeline is long or it has stopped reading for good."""

    def __init__(self, transport: asyncio.Transport, protocol: HeadLimitedProtocol) -> None:
        super().__init__(transport)
        self._protocol = protocol

    def resume_reading(self) -> None:
        protocol = self._protocol
        if protocol.stopped or len(protocol.pipeline) > PIPELINE_RESUME_AT:
            return
        super().resume_reading()


class HeadLimitedProtocol(HttpToolsProtocol):
    timeouts = ConnectionTimeouts()
    stopped = False  # the parser reads nothing more on this connection

    _in_body = False
    _pipeline_full = False
    _refused = False  # the current request was answered by the protocol; its body is ignored
    _timer: asyncio.TimerHandle | None = None
    _timer_phase: Phase | None = None

    @classmethod
    def configured(cls, timeouts: ConnectionTimeouts) -> type[HeadLimitedProtocol]:
        """This protocol with other timeouts, as a class uvicorn can be given."""
        return type(cls.__name__, (cls,), {"timeouts": timeouts})

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head = HeadCount()
        super().connection_made(transport)
        self.flow = _PipelineFlow(transport, self)
        self._arm(Phase.HEAD, self.timeouts.header_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.stopped:
            return
        idle = self.timeout_keep_alive_task
        head = self._head
        head.feeding()
        super().data_received(data)
        if self.transport.is_closing() or self.stopped:
            return
        if head.in_head:
            if head.buffered_too_much(len(data)):
                self._stop(_HEAD_TOO_LARGE_ANSWER)
                return
            # A head or body left incomplete by `data` began in it (a timer already armed
            # is the first head's, from the connection): timed from now.
            if self._timer is None:
                self._arm(Phase.HEAD, self.timeouts.header_s)
        elif self._in_body:
            if self._timer is None:
                self._arm(Phase.BODY, self.timeouts.body_s)
        elif idle is not None and not head.began and self.timeout_keep_alive_task is None:
            # Bytes that began no request (stray CRLFs): still idle, since the same moment.
            self.timeout_keep_alive_task = self.loop.call_at(
                idle.when(), self.timeout_keep_alive_handler
            )

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head.begin()
        self._refused = False

    def on_url(self, url: bytes) -> None:
        # Past the limit, HeadTooLarge stops the parser; uvicorn calls send_400_response.
        self._head.add(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head.add(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head.end()
        if self._timer_phase is Phase.HEAD:
            self._disarm()
        if len(self.pipeline) >= MAX_PIPELINED:
            self._pipeline_full = True
            raise _PipelineFull  # stops the parser; uvicorn then calls send_400_response
        self._in_body = True
        upgrade = self.parser.should_upgrade()
        if self.refuse_request():
            self._refused = True
            return
        super().on_headers_complete()
        if upgrade:
            self.cycle.keep_alive = False

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._timer_phase is Phase.BODY:
            self._disarm()
        if not self._refused:
            super().on_message_complete()

    def refuse_request(self) -> bool:
        """Answer the request whose head is complete here, before the app; True if done.
        The base refuses nothing."""
        return False

    # uvicorn's hooks

    def send_400_response(self, msg: str) -> None:
        if self._head.too_large:
            self.logger.warning("request head over %d bytes refused", MAX_HEAD_BYTES)
            self._stop(_HEAD_TOO_LARGE_ANSWER)
        elif self._pipeline_full:
            self.logger.warning("more than %d pipelined requests: reading stopped", MAX_PIPELINED)
            self._stop(None)
        elif self.answer_pending():
            self._stop(None)  # a 400 now would overtake the answers still owed
        else:
            super().send_400_response(msg)

    def _should_upgrade_to_ws(self) -> bool:
        return False  # neither service serves WebSockets

    def _unsupported_upgrade_warning(self) -> None:
        # The upgrade request itself is answered over HTTP/1.1 (its cycle closes after).
        self.stopped = True
        self.flow.pause_reading()

    # Ending a connection

    def answer_pending(self) -> bool:
        """The app still owes an answer on this connection."""
        return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

    def _stop(self, answer: bytes | None) -> None:
        """Read nothing more; write `answer` and close now, or, with answers owed, close
        after the last of them (without `answer`, which would overtake them)."""
        self.stopped = True
        self._disarm()
        self.flow.pause_reading()
        if self._in_body:
            # The request whose body stopped short cannot be served: end the connection
            # now, answering only if nothing else is owed and its own answer has not begun.
            if self._refused or self.pipeline or self.cycle.response_started:
                answer = None
        elif self.answer_pending():
            self.cycle.keep_alive = False
            return
        if answer is not None:
            self.transport.write(answer)
        self.transport.close()

    def _arm(self, phase: Phase, delay_s: float) -> None:
        self._disarm()
        self._timer_phase = phase
        self._timer = self.loop.call_later(delay_s, self._timed_out, phase)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_phase = None

    def _timed_out(self, phase: Phase) -> None:
        self._timer = None
        self._timer_phase = None
        if self.transport.is_closing():
            return
        self.timed_out(phase)
        self._stop(closing(problem_answer(408, self.timeouts.detail(phase))))

    def timed_out(self, phase: Phase) -> None:
        """Called when a client took too long (to count it); the base only logs it."""
        self.logger.info("a client's request %s took too long: closed", phase.value)
