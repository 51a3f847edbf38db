"""`python -m shardstack.token_keeper FILE`: the compose stack's admin token, kept in FILE
(a volume the gateway and shards read through SHARDSTACK_ADMIN_TOKEN_FILE).

Run once before the services start: an exported SHARDSTACK_ADMIN_TOKEN is written there
and wins; otherwise the token made at the first start is kept, or one is made now. A made
token is the gateway's to show (gateway/gunicorn_conf.py), and `shardstack token
--compose` reads it through the engine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shardstack.common.admin_token import TOKEN_ENV, keep_token_file


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m shardstack.token_keeper FILE")
    token_file = Path(sys.argv[1])
    try:
        _, generated = keep_token_file(token_file, os.environ.get(TOKEN_ENV) or None)
    except (ValueError, OSError) as exc:
        sys.exit(f"token: {exc}")
    source = (
        "made for this stack (the gateway's log shows it)" if generated else f"from {TOKEN_ENV}"
    )
    print(f"token: the admin token in {token_file} is {source}")


if __name__ == "__main__":
    main()
