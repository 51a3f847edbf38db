"""The gunicorn worker the gateway runs in: uvicorn's, serving through the head-limited
protocol (shardstack/common/http_protocol.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]


class GatewayWorker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "http": "shardstack.common.http_protocol:HeadLimitedProtocol",
    }
