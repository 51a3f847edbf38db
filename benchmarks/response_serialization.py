"""Which way should the gateway serialise its aggregate: FastAPI's response_model or orjson?

FastAPI (0.130 and later) deprecates ORJSONResponse and recommends declaring a
response model, which pydantic serialises in Rust. This drives both variants of a
20-shard aggregate through the full ASGI app in process (no sockets, so the framework
and the serialiser are all that is measured), alternating them in rounds.

    .venv/bin/python benchmarks/response_serialization.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel

from shardstack_kernel import topology

SHARDS = topology.SHARD_COUNT
ROUNDS = 7
REQUESTS = 3000


class ShardEntry(BaseModel):
    shard: int
    status: str
    latency_ms: float
    records: int | None = None


class AggregateBody(BaseModel):
    status: str
    ok: int
    failed: int
    elapsed_ms: float
    timeout_ms: int
    shards: list[ShardEntry]


def _entries() -> list[dict[str, Any]]:
    return [
        {"shard": i, "status": "ok", "latency_ms": 3.0 + i / 7, "records": 10}
        for i in range(SHARDS)
    ]


def build_apps() -> dict[str, FastAPI]:
    model_app, orjson_app = FastAPI(), FastAPI()

    @model_app.get("/api/aggregate", response_model=AggregateBody)
    async def with_response_model() -> AggregateBody:
        entries = [ShardEntry(**entry) for entry in _entries()]
        return AggregateBody(
            status="complete", ok=SHARDS, failed=0, elapsed_ms=12.5, timeout_ms=2000, shards=entries
        )

    @orjson_app.get("/api/aggregate")
    async def with_orjson() -> Response:
        body = {
            "status": "complete", "ok": SHARDS, "failed": 0, "elapsed_ms": 12.5,
            "timeout_ms": 2000, "shards": _entries(),
        }  # fmt: skip
        return Response(orjson.dumps(body), media_type="application/json")

    return {"response_model (pydantic)": model_app, "Response(orjson.dumps)": orjson_app}


async def _one_request(app: FastAPI) -> bytes:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/api/aggregate", "raw_path": b"/api/aggregate",
        "query_string": b"", "root_path": "", "headers": [], "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    body = bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return bytes(body)


async def main() -> None:
    apps = build_apps()
    bodies = {name: orjson.loads(await _one_request(app)) for name, app in apps.items()}
    assert len({orjson.dumps(body) for body in bodies.values()}) == 1, "variants must agree"
    timings: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(ROUNDS):
        for name, app in apps.items():
            started = time.perf_counter()
            for _ in range(REQUESTS):
                await _one_request(app)
            timings[name].append((time.perf_counter() - started) / REQUESTS * 1e6)
    baseline = statistics.median(timings["response_model (pydantic)"])
    print(f"{SHARDS}-shard aggregate, {ROUNDS} rounds of {REQUESTS} requests, median per request")
    for name, samples in timings.items():
        median = statistics.median(samples)
        print(f"  {name:28} {median:7.1f} us   {baseline / median:4.2f}x vs response_model")


if __name__ == "__main__":
    asyncio.run(main())
