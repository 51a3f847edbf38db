"""`python -m shardstack.probe URL`: exit 0 if URL answers HTTP 200 within two seconds,
else 1 with the reason. A container health check: the standard library only, so it
starts in milliseconds even on a busy machine, and the image needs no curl."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT_S = 2.0


def probe(url: str, timeout_s: float = TIMEOUT_S) -> str | None:
    """None if `url` answers 200, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status: int = response.status
    except urllib.error.HTTPError as exc:
        return f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url}: HTTP {status}"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m shardstack.probe URL")
    failure = probe(sys.argv[1])
    if failure is not None:
        sys.exit(f"probe: {failure}")


if __name__ == "__main__":
    main()
