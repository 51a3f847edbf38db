"""Connections to the shards counted from the kernel, for a client that keeps its pool
to itself (pyreqwest: hyper's pool has no view and no hook from Python).

Each count lists this process's file descriptors and keeps the sockets whose peer is a
shard's data port. A socket is looked at once (its peer, through a duplicate of its
descriptor) and remembered by inode, so a count costs a `stat` per descriptor. The
kernel's TCP table was not used: it lists every socket on the machine, 100,000 lines
with 50,000 clients held, and reading it each second took a worker's CPU from its
clients. (psutil's `net_connections` reads that table too.)

Connections seen since the last count were opened, those gone were closed; one that
opened and closed between two counts is not seen, so the opened and closed totals are
lower bounds and the gauges exact at each count.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterable
from urllib.parse import urlsplit

from gateway.upstream import ConnectionHooks


class SocketCensus:
    def __init__(self, shard_urls: Iterable[str], hooks: ConnectionHooks) -> None:
        self._peer_ports = {urlsplit(url).port or 80 for url in shard_urls}
        self._hooks = hooks
        self._to_a_shard: dict[int, bool] = {}  # every open socket with a known peer
        self._held: set[int] = set()  # those connected to a shard

    def count(self) -> int:
        """Connections this process holds to the shards now; reports the changes."""
        sockets: set[int] = set()
        held: set[int] = set()
        for name in os.listdir("/proc/self/fd"):
            descriptor = int(name)
            try:
                status = os.fstat(descriptor)
            except OSError:  # closed since it was listed
                continue
            if not stat.S_ISSOCK(status.st_mode):
                continue
            inode = status.st_ino
            sockets.add(inode)
            to_a_shard = self._to_a_shard.get(inode)
            if to_a_shard is None:
                to_a_shard = self._peer_is_a_shard(descriptor)
                if to_a_shard is not None:
                    self._to_a_shard[inode] = to_a_shard
            if to_a_shard:
                held.add(inode)
        self._to_a_shard = {i: self._to_a_shard[i] for i in sockets if i in self._to_a_shard}
        for _ in held - self._held:
            self._hooks.opened()
        for _ in self._held - held:
            self._hooks.closed()
        self._held = held
        return len(held)

    def _peer_is_a_shard(self, descriptor: int) -> bool | None:
        """Whether the socket's peer is a shard; None while it has no peer yet (still
        connecting, or a listener), so that it is looked at again."""
        try:
            with socket.socket(fileno=os.dup(descriptor)) as duplicate:
                if duplicate.family not in (socket.AF_INET, socket.AF_INET6):
                    return False
                peer = duplicate.getpeername()
        except OSError:  # not connected yet, or closed meanwhile
            return None
        return bool(peer[1] in self._peer_ports)
