"""What `shardstack up` promises about its processes, against real ones: the stack ends
when the gateway dies, a start that takes too long is one line and leaves nothing, the
children go when the launcher is killed outright, and the token file it leaves for the
CLI is private and gone at the stop."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

from tests.e2e.stack import (
    StartStack,
    alive,
    descendants,
    gunicorn_master,
    listening,
    site_hook,
)
from tests.support import HOST, wait_until


def test_the_stack_stops_when_the_gateway_dies(start: StartStack) -> None:
    stack = start()
    processes = descendants(stack.process.pid)
    master = gunicorn_master(stack)
    os.kill(master, signal.SIGKILL)
    assert stack.process.wait(60) == 1
    last = stack.stderr().strip().splitlines()[-1]
    assert last.startswith("shardstack: gateway was killed by SIGKILL")
    wait_until(lambda: not [pid for pid in processes if alive(pid)], 30, "every child gone")
    assert not [port for port in stack.ports() if listening(port)]


def test_a_start_that_takes_too_long_is_one_line_and_leaves_nothing(
    start: StartStack, tmp_path: Path
) -> None:
    # Shard 1 stalls before it serves: a real slow start.
    hook = site_hook(
        tmp_path, "import os, time\nif os.environ.get('SHARD_ID') == '1':\n    time.sleep(120)\n"
    )
    stack = start("--startup-timeout", "3", wait=False, PYTHONPATH=hook)
    assert stack.process.wait(60) == 1
    last = stack.stderr().strip().splitlines()[-1]
    assert last.startswith("shardstack: not ready after 3s: shard-01 (logs: ")
    assert not [port for port in stack.ports() if listening(port)]


def test_the_children_go_when_the_launcher_is_killed_outright(start: StartStack) -> None:
    stack = start()
    processes = descendants(stack.process.pid)
    assert len(processes) == 3 + 1 + 2
    stack.process.kill()  # SIGKILL: the launcher cannot stop anything itself
    stack.process.wait(10)
    # The kernel sends each child SIGTERM as its parent dies (PR_SET_PDEATHSIG).
    wait_until(lambda: not [pid for pid in processes if alive(pid)], 60, "every child gone")
    assert not [port for port in stack.ports() if listening(port)]


def test_the_token_file_is_private_while_up_and_gone_after(start: StartStack) -> None:
    stack = start()
    port = stack.gateway_url.rsplit(":", 1)[1]
    token_file = Path(stack.env["XDG_STATE_HOME"], "shardstack", f"{HOST}-{port}.token")
    mode = stat.S_IMODE(token_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert 16 <= len(token_file.read_text().strip()) <= 512
    assert stack.stop() == 0
    assert not token_file.exists()
