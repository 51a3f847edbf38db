"""The floor of `shardstack bench compare`: the least an asyncio fan-out can do.

aiohttp's server and client and nothing else: no framework, no validation, no metrics,
no semaphore. Served by gunicorn with aiohttp's uvloop worker, answering the same shape
as the gateway. FLOOR_SHARD_URLS lists the shards, comma-separated.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

SHARD_URLS = [url for url in os.environ.get("FLOOR_SHARD_URLS", "").split(",") if url]
TIMEOUT = aiohttp.ClientTimeout(total=2.0)
SESSION = web.AppKey("session", aiohttp.ClientSession)


Get = Callable[[str], Awaitable[tuple[int, bytes]]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


async def _aiohttp_get(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


async def aggregate(request: web.Request) -> web.Response:
    session = request.app[SESSION]
    return await gathered(
        functools.partial(_aiohttp_get, session), (aiohttp.ClientError, TimeoutError)
    )


async def gathered(get: Get, client_errors: tuple[type[Exception], ...]) -> web.Response:
    """Every shard's /data through `get`, in the gateway's answer shape."""
    errors: tuple[type[Exception], ...] = (
        *client_errors,
        orjson.JSONDecodeError,
        KeyError,
        TypeError,
    )

    async def fetch(shard: int, url: str) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            status_code, body = await get(url)
            payload = orjson.loads(body)
            records, status = payload["records"], "ok" if status_code == 200 else "error"
        except errors:
            records, status = None, "error"
        latency_ms = (time.perf_counter() - started) * 1000.0
        return {"shard": shard, "status": status, "latency_ms": latency_ms, "records": records}

    results = await asyncio.gather(*(fetch(i, f"{url}/data") for i, url in enumerate(SHARD_URLS)))
    ok = sum(result["status"] == "ok" for result in results)
    status = "complete" if ok == len(results) else "partial"
    body = {"status": status, "ok": ok, "failed": len(results) - ok, "shards": results}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def readyz(request: web.Request) -> web.Response:
    return web.json_response({"ready": True})


async def client_session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        app[SESSION] = session
        yield


def application(
    client: Callable[[web.Application], AsyncIterator[None]], handler: Handler
) -> web.Application:
    """The floor's server around `client` (its lifespan) and the aggregate `handler`."""
    served = web.Application()
    served.cleanup_ctx.append(client)
    served.router.add_get("/api/aggregate", handler)
    served.router.add_get("/readyz", readyz)
    return served


async def app() -> web.Application:
    return application(client_session, aggregate)
