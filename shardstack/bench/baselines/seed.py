"""The baseline of `shardstack bench compare`: the fan-out pattern this product starts from.

A FastAPI app with one shared `httpx.AsyncClient` (limits 200) and a semaphore of 100,
gathering every shard's /data. Served like the gateway (gunicorn, uvicorn workers) and
answering the same shape, so the load and the answers compare. SEED_SHARD_URLS lists
the shards, comma-separated.

SEED_WITHOUT_SNIFFIO=1 runs it as `pip install fastapi httpx uvicorn` installs it today:
without sniffio (anyio no longer pulls it in), which httpcore then looks for on every
lock, searching sys.path each time. This package depends on sniffio, so its absence is
played: `import sniffio` runs the same search for a name that is not installed, then fails.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from fastapi.responses import Response

SHARD_URLS = [url for url in os.environ.get("SEED_SHARD_URLS", "").split(",") if url]
TIMEOUT_S = 2.0

client: httpx.AsyncClient
semaphore: asyncio.Semaphore


class _NotInstalled(importlib.abc.MetaPathFinder):
    def __init__(self, name: str) -> None:
        self._name = name

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self._name:
            return None
        for finder in sys.meta_path:
            if finder is not self:
                finder.find_spec(f"{fullname}_not_installed", path, target)
        raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global client, semaphore
    if os.environ.get("SEED_WITHOUT_SNIFFIO") == "1":
        sys.modules.pop("sniffio", None)  # anyio keeps the one it imported
        sys.meta_path.insert(0, _NotInstalled("sniffio"))
    client = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
        timeout=httpx.Timeout(TIMEOUT_S),
    )
    semaphore = asyncio.Semaphore(100)
    yield
    await client.aclose()


app = FastAPI(lifespan=lifespan)


async def fetch(shard: int, url: str) -> dict[str, Any]:
    started = time.perf_counter()
    async with semaphore:
        try:
            response = await client.get(f"{url}/data")
            response.raise_for_status()
            records = response.json()["records"]
            status = "ok"
        except (httpx.HTTPError, ValueError, KeyError):
            records, status = None, "error"
    latency_ms = (time.perf_counter() - started) * 1000.0
    return {"shard": shard, "status": status, "latency_ms": latency_ms, "records": records}


@app.get("/api/aggregate")
async def aggregate() -> Response:
    results = await asyncio.gather(*(fetch(i, url) for i, url in enumerate(SHARD_URLS)))
    ok = sum(result["status"] == "ok" for result in results)
    status = "complete" if ok == len(results) else "partial"
    body = {"status": status, "ok": ok, "failed": len(results) - ok, "shards": results}
    return Response(orjson.dumps(body), media_type="application/json")


@app.get("/readyz")
async def readyz() -> dict[str, bool]:
    return {"ready": True}
