"""The server's processes as the kernel counts them: CPU seconds and resident memory.

psutil reads /proc; a gunicorn master and its workers are one tree, found from the
process listening on the benchmarked port or from a known PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
import urllib.parse
from collections.abc import Iterable

import psutil

# How stale the list of the tree's processes may be for a memory sample: finding the
# children reads every process's parent in /proc, a tenth of the load generator's CPU
# when done at every sample (py-spy).
_TREE_REFRESH_S = 1.0


class ProcessTree:
    """A root process and whatever children it has at each reading."""

    def __init__(self, roots: Iterable[int]) -> None:
        self._roots = [psutil.Process(pid) for pid in roots]
        self.peak_rss = 0
        self._known: list[psutil.Process] = []
        self._known_at = float("-inf")

    @classmethod
    def listening_on(cls, port: int) -> ProcessTree | None:
        """The processes serving `port` on this machine, or None if none is found here.

        Every gunicorn worker shares the master's listening socket, but the kernel's
        table names one holder per socket; so from each holder found, the root is the
        highest ancestor that holds a listener on the port too.
        """
        pids: set[int] = set()
        with contextlib.suppress(psutil.AccessDenied):
            for conn in psutil.net_connections(kind="tcp"):
                if conn.status != psutil.CONN_LISTEN or conn.pid is None or not conn.laddr:
                    continue
                if conn.laddr.port == port:
                    pids.add(conn.pid)
        if not pids:
            return None
        roots = set()
        for pid in pids:
            while (parent := _parent(pid)) is not None and _listens(parent, port):
                pid = parent
            roots.add(pid)
        return cls(roots)

    @classmethod
    def listening_on_url(cls, url: str) -> ProcessTree | None:
        """The server of `url` if it is on this machine (a loopback or local address)."""
        parts = urllib.parse.urlsplit(url)
        if parts.hostname is None or not _is_local(parts.hostname):
            return None
        return cls.listening_on(parts.port or 80)

    def processes(self, max_age_s: float = 0.0) -> list[psutil.Process]:
        """The tree's processes, as found at most `max_age_s` ago."""
        now = time.monotonic()
        if now - self._known_at > max_age_s:
            found: dict[int, psutil.Process] = {}
            for root in self._roots:
                with contextlib.suppress(psutil.NoSuchProcess):
                    for process in (root, *root.children(recursive=True)):
                        found[process.pid] = process
            self._known, self._known_at = list(found.values()), now
        return self._known

    def cpu_seconds(self) -> float:
        """User + system CPU of every process in the tree now (exited children are lost)."""
        total = 0.0
        for process in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def rss_bytes(self) -> int:
        total = 0
        for process in self.processes(_TREE_REFRESH_S):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += process.memory_info().rss
        self.peak_rss = max(self.peak_rss, total)
        return total

    async def watch_rss(self, every_s: float = 0.1) -> None:
        """Sample the tree's total RSS until cancelled; the highest is `peak_rss`."""
        while True:
            await asyncio.to_thread(self.rss_bytes)
            await asyncio.sleep(every_s)


def _listens(pid: int, port: int) -> bool:
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return any(
        conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
        for conn in connections
    )


def _parent(pid: int) -> int | None:
    try:
        parent: int = psutil.Process(pid).ppid()
    except psutil.NoSuchProcess:
        return None
    return parent


def _is_local(host: str) -> bool:
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return False
    return address.is_loopback or address.is_unspecified or host == socket.gethostname()
