"""Hold many client connections open on the gateway at once and have every one of them
served, twice, over the same connection.

    .venv/bin/python benchmarks/connections.py --connections 10000 --pid GUNICORN_MASTER_PID

1. open: connections are opened at `--rate` per second and each sends one request as
   soon as it is open; every connection stays open.
2. hold: with all of them open, the gateway's processes (the gunicorn master given by
   --pid, and its workers) are measured: PSS, RSS and open descriptors.
3. again: every connection sends a second request, at `--rate` per second, on the
   connection it already has: a connection the server had dropped shows up as an error.

Every request asks for one shard (`?shards=I`, connection I's, round the 20 shards), so
that the gateway's work per request is small and the figure is about connections; its
deadline is the gateway's default.
Several processes from several `--source` addresses hold more connections than one
process's open-file limit and one address's ephemeral ports allow.
Requests are written and read on plain asyncio streams, not an HTTP client library, so
that one client process can hold tens of thousands of them. It prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import time
from collections import Counter
from typing import Any

import orjson
import psutil
import uvloop

from shardstack_kernel import topology

SHARDS = topology.SHARD_COUNT


class Client:
    """One connection, sending one request at a time and reading the whole answer."""

    def __init__(self, host: str, port: int, shard: int, source: str | None) -> None:
        self._host, self._port = host, port
        self._local = None if source is None else (source, 0)
        self._request = f"GET /api/aggregate?shards={shard} HTTP/1.1\r\nHost: {host}\r\n\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self._host, self._port, local_addr=self._local
        )

    async def get(self) -> int:
        assert self._reader is not None
        assert self._writer is not None
        if self._writer.is_closing():
            raise ConnectionResetError("the server closed the connection")
        self._writer.write(self._request.encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"connection" and value.strip().lower() == b"close":
                raise ConnectionError("the server closed the connection")
        await self._reader.readexactly(length)
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []

    async def timed(self, request: Any, timeout_s: float) -> bool:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                status = await request
        except (
            OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError
        ) as exc:  # fmt: skip
            self.errors[type(exc).__name__] += 1
            return False
        self.latencies.append(time.perf_counter() - started)
        self.statuses[status] += 1
        return True

    def summary(self, deadline_s: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def at(q: float) -> float | None:
            return (
                round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)
                if ordered
                else None
            )

        return {
            "answers": len(ordered),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "p50_ms": at(0.5), "p99_ms": at(0.99),
            "max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
            "past_deadline": sum(latency > deadline_s for latency in ordered),
        }  # fmt: skip


async def _paced(count: int, rate: float, start: Any) -> None:
    """Call `start(i)` for i in range(count), the i-th at i/rate seconds; wait for all."""
    began = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(start(i)))
    await asyncio.gather(*tasks)


def _server_memory(pid: int) -> dict[str, int]:
    master = psutil.Process(pid)
    pss = rss = fds = 0
    for process in [master, *master.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            memory = process.memory_full_info()
            pss, rss, fds = pss + memory.pss, rss + memory.rss, fds + process.num_fds()
    return {"pss_bytes": pss, "rss_bytes": rss, "open_fds": fds}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    clients: list[Client | None] = [
        Client(args.host, args.port, i % SHARDS, args.source) for i in range(args.connections)
    ]
    opened = 0
    first = Tally()
    open_errors: Counter[str] = Counter()

    async def open_and_get(i: int) -> None:
        nonlocal opened
        client = clients[i]
        assert client is not None
        try:
            async with asyncio.timeout(args.timeout):
                await client.open()
        except (OSError, TimeoutError) as exc:
            open_errors[type(exc).__name__] += 1
            clients[i] = None
            return
        opened += 1
        if not await first.timed(client.get(), args.timeout):
            client.close()  # in no known state: not asked again
            clients[i] = None

    began = time.perf_counter()
    await _paced(args.connections, args.rate, open_and_get)
    open_s = time.perf_counter() - began
    await asyncio.sleep(args.hold)
    held = _server_memory(args.pid)
    again = Tally()
    live = [client for client in clients if client is not None]
    await _paced(len(live), args.rate, lambda i: again.timed(live[i].get(), args.timeout))
    for client in live:
        client.close()
    return {
        "connections": args.connections,
        "opened": opened,
        "open_errors": dict(open_errors),
        "open_s": round(open_s, 1),
        "first": first.summary(args.deadline),
        "again": again.summary(args.deadline),
        "held": held,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument(
        "--rate", type=float, default=500.0, help="opens, then requests, per second"
    )
    parser.add_argument(
        "--hold", type=float, default=5.0, help="seconds all are held before measuring"
    )
    parser.add_argument(
        "--deadline", type=float, default=2.0, help="the gateway's default, seconds"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds before a request counts as lost"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=topology.GATEWAY_PORT)
    parser.add_argument(
        "--source",
        help="the local address to connect from (127.0.0.2, ...): each one reaches the "
        "server through its own 28,232 ephemeral ports",
    )
    parser.add_argument("--pid", type=int, required=True, help="the gunicorn master's pid")
    args = parser.parse_args()
    need = args.connections + 100
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, hard), max(need, hard)))
    except (ValueError, OSError):
        sys.exit(f"connections.py: {need} open files needed; the limit is {hard}")
    sys.stdout.buffer.write(orjson.dumps(uvloop.run(run(args))) + b"\n")


if __name__ == "__main__":
    main()
