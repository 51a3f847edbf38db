"""`GET /ui`: the live control panel, and `GET /ui/state`, the snapshot it polls.

The page is static files shipped in the package (gateway/ui/); its figures are as public
as `/metrics`, the shards' faults are shown only to the admin token (as `GET
/admin/faults`), and every action it takes goes to the admin API with the token the user
types.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Annotated

import orjson
from fastapi import APIRouter, Header
from fastapi.responses import Response
from starlette.staticfiles import StaticFiles

from gateway import panel
from gateway.state import Gateway
from shardstack_kernel.admin_token import require_bearer

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


def _page(name: str) -> Response:
    """A page of this package's (never a CDN's), under the panel's policy."""
    html = (UI_FILES / name).read_bytes()
    return Response(html, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


@router.get("/ui")
async def page() -> Response:
    return _page("index.html")


@router.get("/docs")
async def api_document() -> Response:
    """The API document in Swagger UI."""
    return _page("docs.html")


@router.get("/ui/state")
async def state(
    gateway: Gateway, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """The panel's snapshot; the shards' faults only with the admin token, as
    `GET /admin/faults` (a wrong token is a 401, as there)."""
    with_faults = authorization is not None
    if with_faults:
        require_bearer(authorization, gateway.admin_token)
    figures, shards = await asyncio.gather(gateway.panel.figures.get(), gateway.panel.shards.get())
    body = panel.snapshot(figures, shards, with_faults)
    return Response(
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )
