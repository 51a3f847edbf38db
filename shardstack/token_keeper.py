"""`python -m shardstack.token_keeper FILE`: the compose stack's admin token, kept in FILE
(a volume the gateway and shards read through SHARDSTACK_ADMIN_TOKEN_FILE).

Run once before the services start: an exported SHARDSTACK_ADMIN_TOKEN is written there
and wins; otherwise the token made at the first start is kept, or one is made now. A token
made now is shown once, in this service's log (`docker compose logs token`), never again
and by no other service; `shardstack token --compose` reads it through the engine.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shardstack_kernel.admin_token import TOKEN_ENV, keep_token_file


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m shardstack.token_keeper FILE")
    token_file = Path(sys.argv[1])
    try:
        token, made = keep_token_file(token_file, os.environ.get(TOKEN_ENV) or None)
    except (ValueError, OSError) as exc:
        sys.exit(f"token: {exc}")
    if made:
        print(
            f"token: admin token made for this stack, kept in the volume admin-token "
            f"(shown this once; `shardstack token --compose` reads it): {token}"
        )
    elif os.environ.get(TOKEN_ENV):
        print(f"token: the admin token in {token_file} is from {TOKEN_ENV}")
    else:
        print(f"token: the admin token made at the stack's first start is kept in {token_file}")


if __name__ == "__main__":
    main()
