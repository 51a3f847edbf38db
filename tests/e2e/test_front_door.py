"""The gateway's front door on the real stack (gunicorn workers serving through
gateway/front_door.py): aggregates past the per-worker cap, connections past the
per-worker limit and clients too slow to send a request's head are refused before the
app, and refusing them holds nothing."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson

from tests.e2e.observe import scrape
from tests.e2e.stack import RunningStack, StartStack
from tests.support import HOST


def _address(stack: RunningStack) -> tuple[str, int]:
    return HOST, int(stack.gateway_url.rsplit(":", 1)[1])


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_aggregates_past_the_cap_are_answered_503_at_the_door_and_free_their_place(
    start: StartStack,
) -> None:
    stack = start(
        "--workers", "1", "--latency", "fixed:600", shards=3,
        GATEWAY_MAX_AGGREGATES_IN_FLIGHT="2",
    )  # fmt: skip
    url = f"{stack.gateway_url}/api/aggregate"
    barrier = threading.Barrier(5)

    def call(index: int) -> httpx.Response:
        barrier.wait()
        if index >= 2:
            time.sleep(0.2)  # the first two are in flight by then
        return httpx.get(url, headers={"x-request-id": f"door-{index}"}, timeout=10)

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(call, range(5)))

    assert [answer.status_code for answer in answers] == [200, 200, 503, 503, 503]
    for index, answer in enumerate(answers):
        assert answer.headers["x-request-id"] == f"door-{index}"
    for refused in answers[2:]:
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "1"
        problem = refused.json()
        assert problem["status"] == 503
        assert "GATEWAY_MAX_AGGREGATES_IN_FLIGHT" in problem["detail"]
        assert refused.elapsed.total_seconds() < 0.3  # not held while the others ran
    # Refused on a kept-alive connection, the next request on it is served.
    with httpx.Client(timeout=10) as client:
        assert client.get(url).status_code == 200
        assert client.get(url).status_code == 200
    metrics = scrape(stack.gateway_url)
    assert metrics.get("gateway_shed_requests_total", reason="in_flight") == 3
    assert metrics.get("gateway_aggregate_requests_total", status="shed") == 3
    assert metrics.get("gateway_aggregates_in_flight") == 0


def test_a_connection_past_the_worker_limit_is_answered_503_and_closed(
    start: StartStack,
) -> None:
    stack = start("--workers", "1", shards=2, GATEWAY_MAX_CONNECTIONS="3")
    held = [socket.create_connection(_address(stack), timeout=10) for _ in range(3)]
    try:
        with socket.create_connection(_address(stack), timeout=10) as extra:
            answer = _read_all(extra)  # answered before it sends anything, then closed
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 503 ")
        assert b"connection: close" in head
        assert b"GATEWAY_MAX_CONNECTIONS" in orjson.loads(body)["detail"].encode()
        # The connections within the limit are served.
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in held:
            sock.close()
    metrics = scrape(stack.gateway_url)
    assert metrics.get("gateway_refused_connections_total", reason="max_connections") == 1


def test_a_client_too_slow_to_send_its_head_is_answered_408_and_cut(
    start: StartStack,
) -> None:
    stack = start("--workers", "1", shards=2, GATEWAY_HEADER_TIMEOUT_S="1")
    silent = socket.create_connection(_address(stack), timeout=10)
    trickling = socket.create_connection(_address(stack), timeout=10)
    started = time.monotonic()
    cut_after = None
    try:
        # One byte every 0.2 s: each byte is activity, but the head never completes in time.
        for byte in b"GET /api/aggregate HTTP/1.1\r\nhost: x\r\n":
            try:
                trickling.sendall(bytes([byte]))
            except OSError:
                cut_after = time.monotonic() - started
                break
            time.sleep(0.2)
        answer = _read_all(silent)
        silent_after = time.monotonic() - started
    finally:
        silent.close()
        trickling.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.9 <= silent_after < 5
    assert cut_after is not None
    assert cut_after < 5
    metrics = scrape(stack.gateway_url)
    assert metrics.get("gateway_refused_connections_total", reason="header_timeout") == 2
    assert metrics.get("gateway_aggregates_in_flight") == 0
    assert metrics.get("gateway_semaphore_in_use") == 0


def _one_answer(sock: socket.socket) -> bytes:
    """One answer off a kept-alive connection (the gateway always sends Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_client_refused_again_and_again_is_read_later_each_time(start: StartStack) -> None:
    """The pace at the door: the next request on a refused connection is read 5 ms
    after the refusal, then 10, 20, ...; one admitted ends the run of refusals."""
    stack = start(
        "--workers", "1", "--latency", "fixed:3000", shards=2,
        GATEWAY_MAX_AGGREGATES_IN_FLIGHT="1", GATEWAY_SHARD_TIMEOUT_MS="10000",
    )  # fmt: skip
    holder = threading.Thread(
        target=lambda: httpx.get(f"{stack.gateway_url}/api/aggregate", timeout=10)
    )
    holder.start()
    time.sleep(0.5)  # the one place is taken for 3 s
    took = []
    with socket.create_connection(_address(stack), timeout=10) as sock:
        for _ in range(6):
            sent = time.monotonic()
            sock.sendall(b"GET /api/aggregate HTTP/1.1\r\nhost: x\r\n\r\n")
            assert _one_answer(sock).startswith(b"HTTP/1.1 503 ")
            took.append(time.monotonic() - sent)
        holder.join()
        sock.sendall(b"GET /api/aggregate?timeout_ms=100 HTTP/1.1\r\nhost: x\r\n\r\n")
        # Admitted: the app's answer, an aggregate cut at its 100 ms deadline.
        assert _one_answer(sock).startswith(b"HTTP/1.1 502 ")
    # Sent at once after each refusal, each waited out its pause, which runs from when the
    # gateway wrote the refusal: up to 2 ms of it may pass before this client has read it
    # and sent again (without a pause, an answer takes well under a millisecond).
    for refusals, seconds in enumerate(took[1:], start=1):
        assert seconds >= 0.005 * 2 ** (refusals - 1) - 0.002, took
