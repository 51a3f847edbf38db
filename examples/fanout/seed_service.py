"""A search service written the seed's way: one shared client, a semaphore of 100, and
every shard's answer awaited, however long the slowest takes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI


def create_app(shard_urls: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.client = httpx.AsyncClient(timeout=10.0)
        app.state.semaphore = asyncio.Semaphore(100)
        yield
        await app.state.client.aclose()

    app = FastAPI(lifespan=lifespan)

    async def fetch(url: str) -> Any:
        async with app.state.semaphore:
            response = await app.state.client.get(f"{url}/data")
            return response.json()

    @app.get("/search")
    async def search() -> dict[str, Any]:
        results = await asyncio.gather(*(fetch(url) for url in shard_urls))
        return {"results": results, "missing": []}

    return app
