"""The answer a request is about to get, and the connection (`Wire`) a fault may take over
to deliver it some other way: late, cut short, reset, or as bytes that are not HTTP.

Effects speak to `Wire`, never to a server's types, so the shard's server can change and
every kind still acts the same; shard_sim/data_protocol.py implements it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol


class Wire(Protocol):
    """The connection under one request, as a fault that delivers the answer sees it."""

    async def start(self, answer: Answer) -> None:
        """Send the status line and headers (with the body's full Content-Length)."""

    async def body(self, chunk: bytes, more: bool) -> None:
        """Send part of the body; `more=False` ends the response."""

    async def disconnected(self) -> None:
        """Return once the client has closed the connection."""

    def write_raw(self, data: bytes) -> None:
        """Put bytes on the connection as they are, outside HTTP."""

    def closing(self) -> bool:
        """Whether the connection is gone or going."""

    async def close(self) -> None:
        """Close with a FIN once what was written is flushed."""

    async def reset(self) -> None:
        """Close with a TCP RST, as a crashed peer would."""


Delivery = Callable[["Answer", Wire], Awaitable[None]]


@dataclass(slots=True)
class Answer:
    """The response a request is about to get; faults change it before it is delivered."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    delivery: Delivery | None = None

    def take_delivery(self, delivery: Delivery) -> bool:
        """Claim how the answer goes out; only the first fault in order gets it."""
        if self.delivery is not None:
            return False
        self.delivery = delivery
        return True

    def head(self) -> list[tuple[bytes, bytes]]:
        """The response headers, Content-Type and Content-Length first."""
        return [
            (b"content-type", self.content_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
        ]

    async def deliver(self, wire: Wire) -> None:
        await (self.delivery or send_plainly)(self, wire)


async def send_plainly(answer: Answer, wire: Wire) -> None:
    await wire.start(answer)
    await wire.body(answer.body, more=False)
