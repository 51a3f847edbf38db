"""The shard process's servers: each shard's data port on its own HTTP protocol
(shard_sim.data_protocol), which faults can take down and bring back, and the admin ports
served by uvicorn, which stay up. One process serves one shard, or several (`SHARD_PACK`),
each with its own ports, state and faults.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn

from shard_sim.data_protocol import DataProtocol
from shard_sim.listener_watch import keep_listener_in_step
from shard_sim.state import ShardState
from shardstack_kernel.http_protocol import ConnectionTimeouts
from shardstack_kernel.tasks import cancel_and_wait

_log = logging.getLogger("shard_sim.server")

# How often the data port looks for connections past their timeouts: a timeout is kept
# to within this much.
SWEEP_S = 1.0
_BACKLOG = 2048


class DataPort:
    """One shard's data listener: opened, closed by `down` (its connections cut, new ones
    refused) and reopened; a connection idle past `idle_timeout_s`, or slower than
    `timeouts` to send a request, is closed by the sweep."""

    def __init__(
        self,
        state: ShardState,
        address: tuple[str, int],
        timeouts: ConnectionTimeouts,
        idle_timeout_s: float,
    ) -> None:
        self.state = state
        self.address = address
        self.timeouts = timeouts
        self.idle_timeout_s = idle_timeout_s
        self.down = False
        self._connections: set[DataProtocol] = set()
        self._server: asyncio.Server | None = None
        self._bound: socket.socket | None = None

    def bind(self) -> None:
        """Take the port now, so a port in use is reported before anything serves."""
        self._bound = listening(self.address)

    async def open(self) -> None:
        sock, self._bound = self._bound or listening(self.address), None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: DataProtocol(self.state, self._connections), sock=sock, backlog=_BACKLOG
        )

    async def set_data_down(self, down: bool) -> None:
        if down == self.down:
            return
        if down:
            self.down = True
            self._close_listener()
            for connection in list(self._connections):
                connection.transport.abort()
            _log.info("data port %s down", self.address[1])
            return
        await self.open()
        self.down = False
        _log.info("data port %s up", self.address[1])

    async def sweep(self) -> None:
        """Runs for the shard's lifetime: each `SWEEP_S`, closes connections idle past
        `idle_timeout_s` and answers 408 to those slower than `timeouts`."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_S)
            now = loop.time()
            stale = now - self.idle_timeout_s
            for connection in list(self._connections):
                if connection.idle and connection.last_active < stale:
                    connection.transport.close()
                elif (phase := connection.overdue(now, self.timeouts)) is not None:
                    connection.time_out(phase, self.timeouts)

    async def close(self, grace_s: float) -> None:
        """Stop accepting; let answers in progress finish for up to `grace_s`, then cut."""
        self._close_listener()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while self._connections and loop.time() < deadline:
            for connection in list(self._connections):
                if connection.idle:
                    connection.transport.close()
            await asyncio.sleep(0.05)
        for connection in list(self._connections):
            connection.transport.abort()

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._bound is not None:
            self._bound.close()
            self._bound = None


class ShardServer(uvicorn.Server):
    """uvicorn for the admin sockets, plus each shard's `DataPort` and its watches, started
    after uvicorn's own startup and stopped before its shutdown."""

    def __init__(self, config: uvicorn.Config, data_ports: list[DataPort], grace_s: float) -> None:
        super().__init__(config)
        self.data_ports = data_ports
        self._grace_s = grace_s
        self._watches: list[asyncio.Task[None]] = []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit:
            return
        for port in self.data_ports:
            await port.open()
            self._watches.append(asyncio.create_task(keep_listener_in_step(port.state)))
            self._watches.append(asyncio.create_task(port.sweep()))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await asyncio.gather(*(port.close(self._grace_s) for port in self.data_ports))
        for port in self.data_ports:
            if port.state.decision_log is not None:
                port.state.decision_log.flush()  # while the loop that timed it still runs
        for watch in self._watches:
            await cancel_and_wait(watch)
        await super().shutdown(sockets=sockets)


def listening(address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"{address[0]}:{address[1]}: {exc.strerror}") from None
    return sock
