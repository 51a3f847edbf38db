"""What every fault kind shares: its common fields, the answer it acts on, and its two hooks.

A kind is a small pydantic model (its parameters) with up to two hooks that the data
route calls for every request the fault fires on:

- `delay_s(rng)`: seconds added before the answer (latency faults add up);
- `shape(answer, rng)`: change the answer's content, or take over its delivery
  (at most one fault delivers an answer; see `Answer.take_delivery`).

`down` acts on the listener instead (`holds_listener_down`), and `flap` wraps another kind.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, cast

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Message, Receive, Scope, Send

# A week: long enough for any experiment, short enough that a typo is not forever.
MAX_DURATION_S = 7 * 24 * 3600.0
TRANSPORT_EXTENSION = "shardstack.transport"

FAULT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
FaultId = Annotated[str, Field(pattern=FAULT_ID_PATTERN)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Seconds = Annotated[float, Field(gt=0, le=MAX_DURATION_S, allow_inf_nan=False)]


class Fault(BaseModel):
    """Fields every kind has; a kind adds its parameters and overrides the hooks it needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Position in the documented order in which firing faults act on one request.
    order: ClassVar[int]
    # Whether the kind makes sense for one request (the per-request fault header).
    per_request: ClassVar[bool] = True

    kind: str
    id: FaultId | None = Field(None, description="name; generated when absent")
    probability: Probability = Field(1.0, description="chance the fault fires, per request")
    duration_s: Seconds | None = Field(None, description="removes itself after this long")

    def effective_order(self) -> int:
        return self.order

    def effective_kind(self) -> str:
        """The kind that acts (a flap acts as the kind it wraps); the metrics' label."""
        return self.kind

    def chance(self) -> float:
        """Probability of firing on one request."""
        return self.probability

    def delay_s(self, rng: random.Random) -> float:
        return 0.0

    def shape(self, answer: Answer, rng: random.Random) -> bool:
        """Act on `answer`; False when the fault could not act (delivery already taken)."""
        return True

    def acts_on_requests(self) -> bool:
        return True

    def holds_listener_down(self, elapsed_s: float) -> bool:
        return False

    def is_on(self, elapsed_s: float) -> bool:
        """Whether the fault is in effect `elapsed_s` after it was added (flap toggles)."""
        return True

    def next_toggle_s(self, elapsed_s: float) -> float | None:
        """Seconds from `elapsed_s` to the next change of `is_on`, if it ever changes."""
        return None

    def compact(self) -> dict[str, Any]:
        """The fault as JSON with only what differs from the defaults (and its kind): the
        form sent to shards and shown to people."""
        dumped = self.model_dump(mode="json", serialize_as_any=True, exclude_defaults=True)
        return {"kind": self.kind, **dumped}

    def words(self) -> str:
        """The `KIND key=value ...` form the CLI and the request header use."""
        return " ".join(
            [self.kind]
            + [
                f"{key}={value if isinstance(value, str) else _compact_json(value)}"
                for key, value in self.compact().items()
                if key not in {"kind", "id", "duration_s"}
            ]
        )

    def params(self) -> dict[str, object]:
        """The kind's own parameters, as they would be written in a request."""
        common = set(Fault.model_fields)
        return {
            key: value for key, value in self.model_dump(mode="json").items() if key not in common
        }


def _compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


Delivery = Callable[["Answer", Scope, Receive, Send], Awaitable[None]]


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

    def start_message(self) -> Message:
        headers = [
            (b"content-type", self.content_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
        ]
        return {"type": "http.response.start", "status": self.status, "headers": headers}

    async def deliver(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.delivery or send_plainly)(self, scope, receive, send)


async def send_plainly(answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
    await send(answer.start_message())
    await send({"type": "http.response.body", "body": answer.body})


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def transport_of(scope: Scope) -> asyncio.Transport:
    """The connection under this request; the shard's server puts it in the scope."""
    transport = scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
    if transport is None:
        raise RuntimeError("this fault needs the shard's own server (python -m shard_sim)")
    # uvloop's transports do not subclass asyncio.Transport, but have its interface.
    return cast(asyncio.Transport, transport)


async def reset_connection(transport: asyncio.Transport) -> None:
    """Close with a TCP RST (SO_LINGER 0) rather than a FIN, as a crashed peer would."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the server see the connection is gone, so it does not answer for us.
    await asyncio.sleep(0)


async def close_connection(transport: asyncio.Transport) -> None:
    """Close with a FIN once what was written is flushed."""
    transport.close()
    await asyncio.sleep(0)
