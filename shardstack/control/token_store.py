"""Where `shardstack up` leaves the admin token for the CLI: one file per gateway address,
readable by its owner only, removed when the stack stops.

    $XDG_STATE_HOME/shardstack/127.0.0.1-8000.token   (XDG_STATE_HOME: ~/.local/state)
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from shardstack_kernel.admin_token import write_private


def token_path(gateway_url: str) -> Path:
    parts = urlsplit(gateway_url)
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    name = f"{parts.hostname or 'localhost'}-{parts.port or 80}.token"
    return Path(state_home) / "shardstack" / name


def save_token(gateway_url: str, token: str) -> Path:
    path = token_path(gateway_url)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, token)
    return path


def load_token(gateway_url: str) -> str | None:
    try:
        return token_path(gateway_url).read_text().strip() or None
    except OSError:
        return None


def forget_token(gateway_url: str) -> None:
    token_path(gateway_url).unlink(missing_ok=True)
