"""Gunicorn serving the gateway with uvicorn workers; every value comes from `GATEWAY_*`.

    gunicorn -c python:gateway.gunicorn_conf

Settings are validated here, in the master, so a bad value stops the gateway with a
one-line message before any worker forks. See gateway/settings.py for every variable.
"""

import os
import sys

from pydantic import ValidationError

from gateway import multiprocess
from gateway.settings import ENV_PREFIX, GatewaySettings
from shardstack_kernel.admin_token import TOKEN_ENV, new_token
from shardstack_kernel.validation import InvalidInput

try:
    _settings = GatewaySettings()
except ValidationError as _exc:
    print(
        f"gateway: invalid setting: {InvalidInput.from_settings(_exc, ENV_PREFIX)}", file=sys.stderr
    )
    sys.exit(2)

_token = _settings.configured_token
if _token is None:
    # Made here, in the master, so every worker forks with the same token; shown once.
    os.environ[TOKEN_ENV] = new_token()
    print(f"gateway: {TOKEN_ENV} is unset; admin token: {os.environ[TOKEN_ENV]}", file=sys.stderr)

wsgi_app = "gateway.app:create_app()"
worker_class = "gateway.worker.GatewayWorker"
bind = [_settings.bind]
workers = _settings.workers
timeout = _settings.worker_timeout_s
graceful_timeout = _settings.graceful_timeout_s
keepalive = _settings.keepalive_s
backlog = _settings.backlog
# Each worker binds its own SO_REUSEPORT socket (gunicorn then opens none in the master),
# so the kernel spreads new connections evenly; one shared socket goes to whichever worker
# wakes first, and under load that is the least busy only by chance.
reuse_port = _settings.reuse_port
loglevel = _settings.log_level
errorlog = "-"
accesslog = None
proc_name = "shardstack-gateway"
# gunicorn's control socket is one path per user ($HOME/.gunicorn/gunicorn.ctl), so every
# gateway on a machine would take it from the last; and its thread in the master is
# stopped and restarted around every worker fork. The launcher supervises the gateway.
control_socket_disable = True


# Metrics across workers (gateway/multiprocess.py): a fresh directory before any worker
# forks, a dead worker's gauges dropped from the sums, the directory removed on exit.
def on_starting(server: object) -> None:
    multiprocess.prepare_dir()


def child_exit(server: object, worker: object) -> None:
    multiprocess.worker_exited(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    multiprocess.remove_dir()
