"""The connection under one `/data` request, as the fault kinds see it (`Wire`): ASGI
messages for what is HTTP, the transport the shard's server puts in the scope for what
is below it (a reset, a close, bytes that are not HTTP)."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import cast

from starlette.types import Receive, Scope, Send

from shardstack.common.faults import Answer

TRANSPORT_EXTENSION = "shardstack.transport"


class AsgiWire:
    """`Wire` over one ASGI request served by the shard's own server (shard_sim.server)."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._scope = scope
        self._receive = receive
        self._send = send

    async def start(self, answer: Answer) -> None:
        await self._send(
            {"type": "http.response.start", "status": answer.status, "headers": answer.head()}
        )

    async def body(self, chunk: bytes, more: bool) -> None:
        await self._send({"type": "http.response.body", "body": chunk, "more_body": more})

    async def disconnected(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass

    def write_raw(self, data: bytes) -> None:
        self._transport().write(data)

    def closing(self) -> bool:
        return self._transport().is_closing()

    async def close(self) -> None:
        self._transport().close()
        await asyncio.sleep(0)

    async def reset(self) -> None:
        transport = self._transport()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        # Let the server see the connection is gone, so it does not answer for us.
        await asyncio.sleep(0)

    def _transport(self) -> asyncio.Transport:
        transport = self._scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
        if transport is None:
            raise RuntimeError("this fault needs the shard's own server (python -m shard_sim)")
        # uvloop's transports do not subclass asyncio.Transport, but have its interface.
        return cast(asyncio.Transport, transport)
