"""Metrics across gunicorn workers: the directory prometheus-client's multiprocess mode
writes to, and its lifecycle.

Each worker writes its values to files in `PROMETHEUS_MULTIPROC_DIR`; a scrape of any
worker reads them all, so every scrape reports the whole gateway. The master (see
gateway/gunicorn_conf.py) calls:

- `prepare_dir` once at start, before any worker forks: a fresh, empty directory;
- `worker_exited` when a worker exits: its live gauges leave the sums (its counters and
  histograms stay, as they must for `rate()` to stay right);
- `remove_dir` on exit, for a directory it made itself.

prometheus-client reads the variable when it is first imported, so this module must not
import it at the top: the master calls `prepare_dir` before anything imports it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_MADE_HERE_ENV = "SHARDSTACK_MULTIPROC_DIR_OWNED"


def multiprocess_dir() -> Path | None:
    """The directory workers write metrics to, or None when the gateway is one process."""
    configured = os.environ.get(MULTIPROC_ENV)
    return Path(configured) if configured else None


def prepare_dir() -> Path:
    """Make `PROMETHEUS_MULTIPROC_DIR` an empty directory and return it.

    An operator's directory is kept but emptied of metric files (values of a previous
    run would otherwise be summed in); without one, a new temporary directory is made.
    """
    configured = multiprocess_dir()
    if configured is None:
        made = Path(tempfile.mkdtemp(prefix="shardstack-gateway-metrics-"))
        os.environ[MULTIPROC_ENV] = str(made)
        os.environ[_MADE_HERE_ENV] = str(made)
        return made
    configured.mkdir(parents=True, exist_ok=True)
    for stale in configured.glob("*.db"):
        stale.unlink()
    return configured


def worker_exited(pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def remove_dir() -> None:
    made = os.environ.get(_MADE_HERE_ENV)
    if made and made == os.environ.get(MULTIPROC_ENV):
        shutil.rmtree(made, ignore_errors=True)
