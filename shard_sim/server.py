"""The shard's server: uvicorn with a data listener that faults can take down and bring
back, an admin listener that stays up, and the connection's transport in each request's
scope (so `reset` and `malformed` can act below HTTP)."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket

import uvicorn

from shard_sim.wire import TRANSPORT_EXTENSION
from shardstack.common.http_protocol import HeadLimitedProtocol

_log = logging.getLogger("shard_sim.server")


class FaultableProtocol(HeadLimitedProtocol):
    """The head-limited httptools protocol, plus the transport under `scope["extensions"]`."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_EXTENSION: self.transport}  # type: ignore[dict-item]


class ShardServer(uvicorn.Server):
    """Serves the app on the data and admin addresses; `set_data_down` closes and reopens
    the data listener (connections are refused meanwhile) and cuts its open connections."""

    def __init__(
        self, config: uvicorn.Config, data: tuple[str, int], admin: tuple[str, int]
    ) -> None:
        super().__init__(config)
        self._data_address = data
        self._admin_address = admin
        self.data_down = False

    def bind(self) -> list[socket.socket]:
        """The data and admin sockets, bound, in that order, for `run(sockets=...)`."""
        data = _listening(self._data_address)
        try:
            return [data, _listening(self._admin_address)]
        except OSError:
            data.close()
            raise

    async def set_data_down(self, down: bool) -> None:
        if down == self.data_down or not self.started:
            return
        if down:
            self.data_down = True
            self.servers[0].close()
            port = self._data_address[1]
            for connection in list(self.server_state.connections):
                transport: asyncio.Transport | None = getattr(connection, "transport", None)
                if transport is not None and transport.get_extra_info("sockname")[1] == port:
                    transport.abort()
            _log.info("data port %s down", port)
            return
        # Rebuilt as uvicorn's own startup builds it (uvicorn.Server.startup).
        protocol = functools.partial(
            self.config.http_protocol_class,  # type: ignore[call-arg]
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        self.servers[0] = await asyncio.get_running_loop().create_server(
            protocol, sock=_listening(self._data_address), backlog=self.config.backlog
        )
        self.data_down = False
        _log.info("data port %s up", self._data_address[1])


def _listening(address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"{address[0]}:{address[1]}: {exc.strerror}") from None
    return sock
