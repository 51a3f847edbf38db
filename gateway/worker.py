"""The gunicorn worker the gateway runs in: uvicorn's, serving through the gateway's front
door (gateway/front_door.py), which refuses before the app what the app would refuse."""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]


class GatewayWorker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "http": "gateway.front_door:FrontDoorProtocol",
    }
