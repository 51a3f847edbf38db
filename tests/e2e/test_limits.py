"""Size limits on the real servers (gunicorn's workers, the shard processes): an oversized
head or body is refused with a problem body before it is read, and changes nothing."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from shardstack_kernel.http_protocol import MAX_BUFFERED_HEAD_BYTES, MAX_HEAD_BYTES
from shardstack_kernel.problem import Problem
from tests.e2e.stack import RunningStack, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("stack"), shards=2) as up:
        yield up


def _exchange(url: str, raw: bytes | list[bytes]) -> tuple[int, bytes, bytes]:
    """Send `raw` (a list: its pieces, 20 ms apart) on a new connection; the status, head
    and body of what comes back.

    Sent from a thread while this one reads: a server that refuses a request early
    answers, then closes with the rest unread, which resets the connection.
    """
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:

        def send() -> None:
            with contextlib.suppress(OSError):
                for piece in [raw] if isinstance(raw, bytes) else raw:
                    sock.sendall(piece)
                    time.sleep(0.02)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        sender.join(10)
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, body


def _pieces(raw: bytes, size: int) -> list[bytes]:
    return [raw[start : start + size] for start in range(0, len(raw), size)]


def _get(path: str, *headers: bytes) -> bytes:
    lines = [f"GET {path} HTTP/1.1".encode(), b"host: test", *headers, b"connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize("server", ["gateway", "shard"])
@pytest.mark.parametrize(
    "request_bytes",
    [
        _get("/healthz", b"x-big: " + b"a" * (MAX_HEAD_BYTES + 1)),
        _get("/healthz", *(f"x-{i}: {'b' * 100}".encode() for i in range(300))),
        _get("/healthz?" + "q" * (MAX_HEAD_BYTES + 1)),
        # A header that never ends, which the parser holds unseen: counted as it arrives.
        _pieces(b"GET /healthz HTTP/1.1\r\nx-huge: " + b"a" * 2 * MAX_BUFFERED_HEAD_BYTES, 10_000),
    ],
    ids=["one big header", "many headers", "long url", "a header in pieces past the buffer"],
)
def test_an_oversized_head_is_a_431(
    stack: RunningStack, server: str, request_bytes: bytes | list[bytes]
) -> None:
    url = stack.gateway_url if server == "gateway" else stack.shard_url(0)
    status, head, body = _exchange(url, request_bytes)
    assert status == 431
    assert b"application/problem+json" in head
    problem = Problem.model_validate_json(body)
    assert problem.detail == f"request line and headers are larger than {MAX_HEAD_BYTES} bytes"


@pytest.mark.parametrize("server", ["gateway", "shard"])
def test_a_head_just_under_the_limit_is_served(stack: RunningStack, server: str) -> None:
    url = stack.gateway_url if server == "gateway" else stack.shard_url(0)
    status, _, _ = _exchange(url, _get("/healthz", b"x-fits: " + b"a" * (MAX_HEAD_BYTES - 200)))
    assert status == 200


@pytest.mark.parametrize("server", ["gateway", "shard"])
def test_the_limit_is_per_request_on_a_kept_alive_connection(
    stack: RunningStack, server: str
) -> None:
    url = stack.gateway_url if server == "gateway" else stack.shard_url(0)
    header = b"x-fits: " + b"a" * (MAX_HEAD_BYTES // 2)
    keep = b"GET /healthz HTTP/1.1\r\nhost: test\r\n" + header + b"\r\n\r\n"
    status, head, body = _exchange(url, keep * 3 + _get("/healthz"))
    # Four answers on one connection, each head under the limit though together over it.
    assert status == 200
    assert (head + body).count(b"HTTP/1.1 200") == 4
    assert b"431" not in head + body


def test_an_oversized_admin_body_is_a_413_and_changes_nothing(stack: RunningStack) -> None:
    token = stack.admin_headers()["authorization"].encode()
    fault = json.dumps({"shards": "all", "kind": "error", "body": "x" * (1 << 20)}).encode()
    raw = (
        b"POST /admin/faults HTTP/1.1\r\nhost: test\r\nauthorization: " + token + b"\r\n"
        b"content-type: application/json\r\ncontent-length: " + str(len(fault)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + fault
    )
    status, _, body = _exchange(stack.gateway_url, raw)
    assert status == 413
    assert "larger than" in json.loads(body)["detail"]
    listed = httpx.get(f"{stack.gateway_url}/admin/faults", headers=stack.admin_headers())
    assert [entry["faults"] for entry in listed.json()["shards"]] == [[], []]
