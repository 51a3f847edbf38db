"""The second floor of `shardstack bench compare`: the raw-aiohttp floor's server with the
fastest client measured, pyreqwest (Rust reqwest), and nothing else. FLOOR_SHARD_URLS
lists the shards, comma-separated.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError

from shardstack.bench.baselines.floor import application, gathered

CLIENT = web.AppKey("client", Client)


async def _pyreqwest_get(client: Client, url: str) -> tuple[int, bytes]:
    response = await client.get(url).build().send()
    return response.status, bytes(await response.bytes())


async def aggregate(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    return await gathered(functools.partial(_pyreqwest_get, client), (PyreqwestError,))


async def upstream_client(app: web.Application) -> AsyncIterator[None]:
    builder = ClientBuilder().max_connections(100).timeout(timedelta(seconds=2))
    async with builder.build() as client:
        app[CLIENT] = client
        yield


async def app() -> web.Application:
    return application(upstream_client, aggregate)
