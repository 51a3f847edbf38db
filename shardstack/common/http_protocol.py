"""uvicorn's httptools protocol with a cap on a request's head (request line and headers).

uvicorn sets no such cap with httptools (only its h11 parser has one), so a client could
make a worker buffer headers without end. Past `MAX_HEAD_BYTES` the answer is 431 with a
problem body, and the connection is closed before any more is read. Both the gateway and
the shards serve through this class.
"""

from __future__ import annotations

from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shardstack.common.problem import PROBLEM_MEDIA_TYPE, problem_body

MAX_HEAD_BYTES = 16 * 1024
# httptools buffers a header until it is whole before it is handed over; this bounds that
# buffer, counted coarsely by what arrives while a head is incomplete.
MAX_BUFFERED_HEAD_BYTES = 4 * MAX_HEAD_BYTES
HEAD_TOO_LARGE = f"request line and headers are larger than {MAX_HEAD_BYTES} bytes"


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


class _HeadTooLarge(Exception):
    pass


class HeadLimitedProtocol(HttpToolsProtocol):
    _head_bytes = 0  # the current request's line and headers, counted exactly
    _buffered_bytes = 0
    _in_head = False
    _head_refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = self._buffered_bytes = 0
        self._in_head = True

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._buffered_bytes += len(data)
        if self._buffered_bytes > MAX_BUFFERED_HEAD_BYTES:
            self._refuse_head()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_refused = True
            raise _HeadTooLarge  # stops the parser; uvicorn then calls send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._head_refused:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self.logger.warning("request head over %d bytes refused", MAX_HEAD_BYTES)
        self.transport.write(_HEAD_TOO_LARGE_ANSWER)
        self.transport.close()
