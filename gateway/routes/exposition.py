"""`GET /metrics`: the whole gateway's Prometheus metrics, whichever worker answers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.state import Gateway

router = APIRouter()


class PrometheusText(Response):
    media_type = CONTENT_TYPE_LATEST


@router.get(
    "/metrics",
    response_class=PrometheusText,
    responses={200: {"description": "Prometheus text exposition format 0.0.4"}},
)
def metrics(gateway: Gateway) -> Response:
    """every worker's metrics in the Prometheus text format, whichever worker answers"""
    # A plain def: FastAPI runs it in a thread, off the event loop, while it reads the
    # workers' metric files.
    return PrometheusText(gateway.metrics.exposition())
