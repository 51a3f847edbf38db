"""The floor of `shardstack bench compare`: the least an asyncio fan-out can do.

aiohttp's server and client and nothing else: no framework, no validation, no metrics,
no semaphore. Served by gunicorn with aiohttp's uvloop worker, answering the same shape
as the gateway. FLOOR_SHARD_URLS lists the shards, comma-separated.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from aiohttp import web

SHARD_URLS = [url for url in os.environ.get("FLOOR_SHARD_URLS", "").split(",") if url]
TIMEOUT = aiohttp.ClientTimeout(total=2.0)
SESSION = web.AppKey("session", aiohttp.ClientSession)


async def fetch(session: aiohttp.ClientSession, shard: int, url: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with session.get(url) as response:
            payload = orjson.loads(await response.read())
            records, status = payload["records"], "ok" if response.status == 200 else "error"
    except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError, KeyError, TypeError):
        records, status = None, "error"
    latency_ms = (time.perf_counter() - started) * 1000.0
    return {"shard": shard, "status": status, "latency_ms": latency_ms, "records": records}


async def aggregate(request: web.Request) -> web.Response:
    session = request.app[SESSION]
    results = await asyncio.gather(
        *(fetch(session, i, f"{url}/data") for i, url in enumerate(SHARD_URLS))
    )
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


async def app() -> web.Application:
    application = web.Application()
    application.cleanup_ctx.append(client_session)
    application.router.add_get("/api/aggregate", aggregate)
    application.router.add_get("/readyz", readyz)
    return application
