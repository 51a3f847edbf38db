"""Connections to the shards counted from the kernel, for a client that keeps its pool
to itself (pyreqwest: hyper's pool has no view and no hook from Python).

Each count reads the kernel's TCP tables (`/proc/self/net/tcp`, and `tcp6`) for sockets
whose peer is a shard's data port, and keeps those this process holds (their inodes are
among its file descriptors). Connections seen since the last count were opened, those
gone were closed; one that opened and closed between two counts is not seen, so the
opened and closed totals are lower bounds and the gauges exact at each count.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from gateway.upstream import ConnectionHooks

_TABLES = (Path("/proc/self/net/tcp"), Path("/proc/self/net/tcp6"))
_ESTABLISHED = b"01"


class SocketCensus:
    def __init__(self, shard_urls: Iterable[str], hooks: ConnectionHooks) -> None:
        # The kernel writes ports as four hex digits.
        self._peer_ports = {b"%04X" % (urlsplit(url).port or 80) for url in shard_urls}
        self._hooks = hooks
        self._ours: set[int] = set()  # inodes of this process's connections to shards
        self._theirs: set[int] = set()  # to a shard port, held by another process

    def count(self) -> int:
        """Connections this process holds to the shards now; reports the changes."""
        seen = self._shard_sockets()
        unknown = seen - self._ours - self._theirs
        if unknown:
            held = _own_socket_inodes()
            self._theirs |= unknown - held
            opened = unknown & held
        else:
            opened = set()
        self._theirs &= seen
        closed = self._ours - seen
        self._ours = (self._ours & seen) | opened
        for _ in opened:
            self._hooks.opened()
        for _ in closed:
            self._hooks.closed()
        return len(self._ours)

    def _shard_sockets(self) -> set[int]:
        inodes: set[int] = set()
        for table in _TABLES:
            try:
                lines = table.read_bytes().splitlines()[1:]
            except FileNotFoundError:  # no IPv6 in this kernel
                continue
            for line in lines:
                fields = line.split()
                # sl, local, remote (ADDR:PORT), state, queues, timer, retransmits, uid,
                # timeout, inode
                if fields[3] == _ESTABLISHED and fields[2][-4:] in self._peer_ports:
                    inodes.add(int(fields[9]))
        return inodes


def _own_socket_inodes() -> set[int]:
    inodes: set[int] = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            status = os.fstat(int(name))
        except OSError:  # closed since it was listed
            continue
        if stat.S_ISSOCK(status.st_mode):
            inodes.add(status.st_ino)
    return inodes
