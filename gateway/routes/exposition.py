"""`GET /metrics`: the whole gateway's Prometheus metrics, whichever worker answers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.state import Gateway

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(gateway: Gateway) -> Response:
    # A plain def: FastAPI runs it in a thread, off the event loop, while it reads the
    # workers' metric files.
    return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
