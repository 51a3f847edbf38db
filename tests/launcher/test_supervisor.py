"""The supervisor with real child processes (small HTTP servers): started together and
ready, stopped group by group in the order given, and failures named."""

from __future__ import annotations

import asyncio
import socket
import sys
import textwrap
from pathlib import Path

import pytest

from shardstack.launcher.supervisor import (
    ChildFailed,
    PortInUse,
    ProcessSpec,
    StartupTimeout,
    Supervisor,
    check_ports_free,
)
from tests.support import HOST, free_port_block

# Serves 200 on every GET; on SIGTERM, notes its name in the record file, then exits.
CHILD = textwrap.dedent("""
    import http.server, signal, sys
    name, port, record = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    def stop(*_):
        with open(record, "a") as out:
            out.write(name + "\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("127.0.0.1", port), Ok).serve_forever()
""")


def _spec(name: str, port: int, record: Path, argv: tuple[str, ...] | None = None) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=argv or (sys.executable, "-c", CHILD, name, str(port), str(record)),
        env={},
        ready_url=f"http://{HOST}:{port}/",
        ports=((HOST, port),),
    )


def test_children_start_together_and_stop_in_the_order_given(tmp_path: Path) -> None:
    record = tmp_path / "stopped"
    base = free_port_block(4)
    names = ["shard-0", "shard-1", "gateway", "prometheus"]
    specs = [_spec(name, base + index, record) for index, name in enumerate(names)]

    async def scenario() -> int:
        supervisor = Supervisor(tmp_path)
        await supervisor.start(specs[:2], timeout_s=30)
        await supervisor.start(specs[2:], timeout_s=30)
        assert len(set(supervisor.pids)) == 4
        return await supervisor.stop([["gateway"], ["shard-0", "shard-1"], ["prometheus"]], 10)

    assert asyncio.run(scenario()) == 4
    stopped = record.read_text().split()
    assert stopped[0] == "gateway"
    assert sorted(stopped[1:3]) == ["shard-0", "shard-1"]
    assert stopped[3] == "prometheus"
    check_ports_free(specs)  # every port is free again


def test_a_child_that_exits_at_start_is_named_with_its_last_log_line(tmp_path: Path) -> None:
    port = free_port_block(1)
    argv = (sys.executable, "-c", "import sys; sys.exit('no config here')")
    spec = _spec("gateway", port, tmp_path / "stopped", argv)

    async def scenario() -> None:
        supervisor = Supervisor(tmp_path)
        try:
            await supervisor.start([spec], timeout_s=30)
        finally:
            await supervisor.stop([], 5)

    with pytest.raises(ChildFailed, match="gateway exited with code 1: no config here"):
        asyncio.run(scenario())


def test_a_child_that_never_gets_ready_times_out_and_is_stopped(tmp_path: Path) -> None:
    port = free_port_block(1)
    argv = (sys.executable, "-c", "import time; time.sleep(60)")
    spec = _spec("shard-07", port, tmp_path / "stopped", argv)

    async def scenario() -> int:
        supervisor = Supervisor(tmp_path)
        with pytest.raises(StartupTimeout, match="not ready after 1s: shard-07"):
            await supervisor.start([spec], timeout_s=1)
        return await supervisor.stop([], 5)

    assert asyncio.run(scenario()) == 1


def test_a_taken_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} on {HOST} \\(for gateway\\)"):
            check_ports_free([_spec("gateway", port, tmp_path / "stopped")])
