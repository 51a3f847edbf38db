"""What one client can do to a running stack, tried as an attacker would on each port that
takes connections (the gateway's, a shard's data port, a shard's admin port): a flood of
pipelined requests, silent, slow and idle connections, a protocol upgrade, odd headers.
Each is bounded, and the port goes on serving everyone else."""

from __future__ import annotations

import collections
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psutil
import pytest

from shard_sim.__main__ import ADMIN_KEEP_ALIVE_S
from shard_sim.server import SWEEP_S
from shardstack_kernel.http_protocol import MAX_PIPELINED
from tests.e2e.stack import RunningStack, gunicorn_workers, start_stack, wait_until_up
from tests.support import HOST, SCHEDULING_MARGIN_S

HEADER_S = 1.0
BODY_S = 1.0
GATEWAY_IDLE_S = 2.0
DATA_IDLE_S = 2.0
PORTS = ["gateway", "shard data", "shard admin"]
_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


@dataclass(frozen=True)
class Port:
    kind: str
    port: int
    pid: int
    # How late the port may close a connection past its timeout: the data port sweeps.
    late_s: float
    idle_s: float

    def request(self, path: str = "/healthz", *headers: str, size: int = 0) -> bytes:
        """A GET, padded with a header to exactly `size` bytes if given."""
        lines = [f"GET {path} HTTP/1.1", f"host: {HOST}", *headers]
        head = "\r\n".join(lines) + "\r\n"
        if size:
            head += "x-pad: " + "a" * (size - len(head) - len("x-pad: \r\n\r\n")) + "\r\n"
        raw = (head + "\r\n").encode()
        assert not size or len(raw) == size
        return raw

    def served(self) -> bool:
        """A well-behaved client gets its answer on a connection of its own."""
        response = httpx.get(f"http://{HOST}:{self.port}/healthz", timeout=10, trust_env=False)
        return response.status_code == 200


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("stack"),
        "--workers", "1",
        shards=2,
        GATEWAY_HEADER_TIMEOUT_S=str(HEADER_S),
        GATEWAY_BODY_TIMEOUT_S=str(BODY_S),
        GATEWAY_KEEPALIVE_S=str(int(GATEWAY_IDLE_S)),
        # Shorter than the shards keep an idle connection, as by default.
        GATEWAY_POOL_KEEPALIVE_S="1",
        SHARD_HEADER_TIMEOUT_S=str(HEADER_S),
        SHARD_BODY_TIMEOUT_S=str(BODY_S),
        SHARD_IDLE_TIMEOUT_S=str(DATA_IDLE_S),
    )  # fmt: skip
    try:
        wait_until_up(running)
        yield running
    finally:
        running.stop()


def _port(stack: RunningStack, kind: str) -> Port:
    if kind == "gateway":
        [worker] = gunicorn_workers(stack)
        port = int(stack.gateway_url.rsplit(":", 1)[1])
        return Port(kind, port, worker, 0.0, GATEWAY_IDLE_S)
    pid = httpx.get(f"{stack.shard_url(0)}/healthz", timeout=10).json()["pid"]
    if kind == "shard data":
        return Port(kind, stack.shard_base_port, pid, SWEEP_S, DATA_IDLE_S)
    admin_port = int(stack.admin_url(0).rsplit(":", 1)[1])
    return Port(kind, admin_port, pid, 0.0, float(ADMIN_KEEP_ALIVE_S))


@pytest.fixture(params=PORTS)
def port(stack: RunningStack, request: pytest.FixtureRequest) -> Port:
    return _port(stack, request.param)


class _Reader:
    """Reads a connection to its end on a thread: the statuses of the answers, and when
    the connection ended."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.statuses: list[int] = []
        self.data = b""
        self.ended_at: float | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        tail = b""
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(1 << 20):
                self.data = (self.data + chunk)[-4096:]
                window = tail + chunk
                self.statuses += [int(code) for code in _STATUS.findall(window)]
                tail = window[-15:]  # a status line cut between two reads is found once
                if _STATUS.search(tail):
                    self.statuses.pop()
        self.ended_at = time.monotonic()

    def wait(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()


def _connect(port: Port) -> socket.socket:
    sock = socket.create_connection((HOST, port.port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_a_pipelined_flood_leaves_memory_flat_and_the_port_serving(port: Port) -> None:
    # 64-byte requests: every read of the server ends on a request's end, so nothing but
    # the pipeline's own bound stops the queue (the head guard never sees half a head).
    request = port.request(size=64)
    process = psutil.Process(port.pid)
    before = process.memory_info().rss
    peak = before
    sock = _connect(port)
    reader = _Reader(sock)
    sent = 0
    with contextlib.suppress(OSError):
        while sent < 100_000:
            sock.sendall(request * 100)
            sent += 100
            if sent % 5_000 == 0:
                peak = max(peak, process.memory_info().rss)
    # The rest of what was read is answered, then the connection ends or goes quiet.
    answered = -1
    while answered != len(reader.statuses) and not reader.wait(1.0):
        answered = len(reader.statuses)
        peak = max(peak, process.memory_info().rss)
    sock.close()
    assert peak - before < 10 * 2**20, f"{(peak - before) / 2**20:.1f} MiB more after {sent:,}"
    assert reader.statuses, "not one answer"
    assert set(reader.statuses) == {200}
    assert port.served()


def test_pipelined_requests_within_the_bound_are_all_answered(port: Port) -> None:
    count = MAX_PIPELINED // 2
    with _connect(port) as sock:
        sock.sendall(port.request() * count)
        statuses: list[int] = []
        received = b""
        while len(statuses) < count:
            chunk = sock.recv(1 << 16)
            assert chunk, f"closed after {len(statuses)} answers"
            received += chunk
            statuses = [int(code) for code in _STATUS.findall(received)]
        assert statuses == [200] * count
        sock.sendall(port.request())  # the connection is still open
        while len(statuses) == count:
            chunk = sock.recv(1 << 16)
            assert chunk, "closed after the pipelined answers"
            received += chunk
            statuses = [int(code) for code in _STATUS.findall(received)]
        assert statuses == [200] * (count + 1)


def test_a_long_pipelined_batch_is_not_taken_for_one_long_head(port: Port) -> None:
    # 48 requests of 4 KiB each (192 KiB) and half of one more, in one write: the server
    # reads far more than a head's limit while a head is incomplete, but no head is long.
    count = 48
    last = port.request(size=4096)
    with _connect(port) as sock:
        reader = _Reader(sock)
        sock.sendall(port.request(size=4096) * count + last[:2000])
        time.sleep(0.2)
        sock.sendall(last[2000:])
        deadline = time.monotonic() + 30
        while len(reader.statuses) < count + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.statuses == [200] * (count + 1)


# What each slow client sends; the port must close it within its timeout: a head's or a
# body's (answered 408), or its idle time (closed in silence).
SLOW_CLIENTS = {
    "silent": ([], "head"),
    "half a head": ([b"GET /healthz HTTP/1.1\r\nhost: x\r\n"], "head"),
    "a head a byte at a time": ([b"G", b"E", b"T", b" ", b"/"], "head"),
    "a body cut short": (
        [b'POST /admin/faults HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"kind"'],
        "body",
    ),
    "a body cut short after its answer": (
        [b"GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nab"],
        "body",
    ),
    "idle after an answer": ([b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"], "idle"),
    "a CRLF after an answer": ([b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n", b"\r\n"], "idle"),
}


def test_slow_and_idle_connections_are_closed_in_time_while_others_are_served(
    port: Port,
) -> None:
    started = time.monotonic()
    readers: dict[str, tuple[_Reader, float]] = {}
    for name, (pieces, _) in SLOW_CLIENTS.items():
        sock = _connect(port)
        opened = time.monotonic()
        reader = _Reader(sock)
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.15)
        readers[name] = (reader, opened)
    # A client that behaves is served all along.
    while time.monotonic() - started < port.idle_s + port.late_s + 1:
        assert port.served()
        time.sleep(0.2)
    for name, (reader, opened) in readers.items():
        limit = {"head": HEADER_S, "body": BODY_S, "idle": port.idle_s}[SLOW_CLIENTS[name][1]]
        assert reader.wait(limit + port.late_s + SCHEDULING_MARGIN_S + 5), f"{name}: still open"
        assert reader.ended_at is not None
        lasted = reader.ended_at - opened
        assert lasted <= limit + len(SLOW_CLIENTS[name][0]) * 0.15 + port.late_s + 2, (
            f"{name}: open {lasted:.2f}s"
        )
        reader.sock.close()
        kind = SLOW_CLIENTS[name][1]
        if kind == "head" or (kind == "body" and port.kind == "shard data"):
            assert reader.statuses[-1:] == [408], (name, reader.data[-300:])


def test_an_upgrade_request_is_answered_once_over_http_1_1(port: Port) -> None:
    upgrade = port.request("/healthz", "connection: Upgrade", "upgrade: websocket")
    with _connect(port) as sock:
        reader = _Reader(sock)
        sock.sendall(upgrade)
        time.sleep(0.3)
        with contextlib.suppress(OSError):
            sock.sendall(port.request())  # what follows an upgrade is not read
        assert reader.wait(30), "the connection stayed open"
    assert reader.statuses == [200]


def test_a_non_ascii_attempt_header_is_a_422_and_the_connection_goes_on(
    stack: RunningStack,
) -> None:
    data = _port(stack, "shard data")
    with _connect(data) as sock:
        sock.sendall(
            # '²', a digit to str.isdigit() but not to int()
            b"GET /data HTTP/1.1\r\nhost: x\r\nx-shardstack-attempt: \xb2\r\n\r\n" + data.request()
        )
        received = b""
        while len(_STATUS.findall(received)) < 2:
            chunk = sock.recv(1 << 16)
            assert chunk, f"closed after {received[:300]!r}"
            received += chunk
    assert [int(code) for code in _STATUS.findall(received)] == [422, 200]
    assert b"x-shardstack-attempt" in received


def test_no_port_keeps_what_a_flood_left_behind(stack: RunningStack) -> None:
    # Each port still answers at once after the floods and slow clients of this module.
    for kind in PORTS:
        assert _port(stack, kind).served()
    statuses = collections.Counter(
        httpx.get(f"{stack.gateway_url}/api/aggregate", timeout=10).status_code for _ in range(5)
    )
    assert statuses == {200: 5}
