"""`GET /ui`: the live control panel, and `GET /ui/state`, the snapshot it polls.

The page is static files shipped in the package (gateway/ui/); its reads are as public as
`/metrics`, and every action it takes goes to the admin API with the token the user types.
"""

from __future__ import annotations

import asyncio
from importlib import resources

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from gateway import panel
from gateway.state import Gateway

router = APIRouter(include_in_schema=False)

UI_FILES = resources.files("gateway") / "ui"
ASSETS_PATH = "/ui/assets"

# Only the page's own files; no inline script or style, no frames, no other origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def assets() -> StaticFiles:
    """The page's scripts, styles and vendored libraries, served under `ASSETS_PATH`."""
    return StaticFiles(directory=str(UI_FILES / "assets"))


@router.get("/ui")
async def page() -> Response:
    html = (UI_FILES / "index.html").read_bytes()
    return Response(html, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


@router.get("/ui/state")
async def state(gateway: Gateway) -> Response:
    shard_ids = [shard.id for shard in gateway.shards]
    # The metric files are read off the event loop, as `/metrics` reads them.
    figures, shards = await asyncio.gather(
        run_in_threadpool(lambda: panel.metrics_snapshot(gateway.metrics.families(), shard_ids)),
        panel.shard_views(gateway.shards, gateway.upstream, gateway.admin),
    )
    body = panel.snapshot(figures, shards)
    return Response(
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )
