"""Free ports for fleets (and any server a test starts): consecutive blocks, drawn at
random from chunks of their own for each pytest-xdist worker, so two workers never race
for one port, and below the kernel's ephemeral range, where an outgoing connection could
take a port found free before the server binds it."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

from shardstack_kernel import topology
from shardstack_kernel.topology import ADMIN_PORT_OFFSET

# A chunk holds a fleet's data ports and its admin ports.
CHUNK = 2 * ADMIN_PORT_OFFSET
LOWEST_PORT = 10_000
# Its own generator: pytest-randomly reseeds the global one before every test, which
# would hand every test the same first port.
_PORTS = random.SystemRandom()


class NoFreePorts(Exception):
    """No block of free ports of the size asked for."""


def free_port_block(count: int, also_at: int | None = None, host: str = topology.HOST) -> int:
    """The first of `count` consecutive free ports (and of `count` more from base + `also_at`)."""
    starts = (0,) if also_at is None else (0, also_at)
    span = max(starts) + count
    if span > CHUNK:
        raise NoFreePorts(f"{span} ports do not fit in a worker's chunk of {CHUNK}")
    chunks = _own_chunks()
    for _ in range(200):
        chunk = _PORTS.choice(chunks)
        base = _PORTS.randrange(chunk, chunk + CHUNK - span + 1)
        if all(is_free(host, base + start + offset) for start in starts for offset in range(count)):
            return base
    raise NoFreePorts(f"no block of {count} free ports found on {host}")


def is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _own_chunks() -> list[int]:
    """The first port of each chunk this process may draw from."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index, workers = (
        int(worker.removeprefix("gw")),
        int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")),
    )
    chunks = range(LOWEST_PORT, _ephemeral_start() - CHUNK + 1, CHUNK)
    return [start for number, start in enumerate(chunks) if number % workers == index]
