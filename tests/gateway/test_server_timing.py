"""The shard's served and injected times as the gateway reads them: the header parsed (or
unknown, never an error), `served_ms` and `injected_ms` on each shard's entry, and the
platform's overhead as a metric."""

from __future__ import annotations

import http.server
import threading

import pytest

from gateway.server_timing import ShardTiming, shard_timing
from tests.support import HOST, GatewayFactory, StartShard


@pytest.mark.parametrize(
    ("header", "served", "injected"),
    [
        ("delay;dur=10.000, total;dur=10.412", 10.412, 10.0),
        ('delay;dur=2, latency;desc="slow-disk";dur=1, total;dur=3.5', 3.5, 2.0),
        ('total;desc="x";dur=0', 0.0, None),
        (None, None, None),
        ("", None, None),
        ("delay;dur=10", None, 10.0),  # no total
        ("total;dur=soon, delay;dur=1e400", None, None),
        ("total;dur=-1, delay", None, None),
        ("total;dur=nan", None, None),
        ("total", None, None),
        (";;,,", None, None),
    ],
)
def test_total_and_delay_are_read_and_anything_else_is_unknown(
    header: str | None, served: float | None, injected: float | None
) -> None:
    assert shard_timing(header) == ShardTiming(served, injected)


@pytest.mark.parametrize("client", ["httpx", "aiohttp", "pyreqwest"])
def test_each_entry_says_what_the_shard_served_and_the_overhead_is_exported(
    make_gateway: GatewayFactory, start_shard: StartShard, client: str
) -> None:
    urls = [start_shard(shard_id, f"fixed:{5 * (shard_id + 1)}").url for shard_id in range(2)]
    with make_gateway(urls, upstream_client=client) as gateway:
        for _ in range(3):
            body = gateway.get("/api/aggregate").json()
        exposition = gateway.get("/metrics").text
    for entry in body["shards"]:
        delay_ms = 5 * (entry["shard"] + 1)
        assert entry["injected_ms"] == delay_ms
        assert delay_ms <= entry["served_ms"] <= entry["latency_ms"]
    samples = dict(
        line.rsplit(" ", 1) for line in exposition.splitlines() if line and line[0] != "#"
    )
    for shard in ("0", "1"):
        assert float(samples[f'gateway_shard_overhead_seconds_count{{shard="{shard}"}}']) == 3
        overhead_s = float(samples[f'gateway_shard_overhead_seconds_sum{{shard="{shard}"}}'])
        assert 0 < overhead_s < 3 * 0.5  # generous: a loaded 2-core machine
    assert float(samples["gateway_shard_server_timing_unknown_total"]) == 0


class _ShardOfAnotherVersion(http.server.BaseHTTPRequestHandler):
    """A shard's answer without Server-Timing, as a shard of another version sends it."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"shard": 0, "delay_ms": 0, "records": []}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_answer_without_server_timing_is_counted_as_unknown(
    make_gateway: GatewayFactory,
) -> None:
    server = http.server.ThreadingHTTPServer((HOST, 0), _ShardOfAnotherVersion)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://{HOST}:{server.server_address[1]}"
        with make_gateway([url]) as gateway:
            body = gateway.get("/api/aggregate").json()
            exposition = gateway.get("/metrics").text
    finally:
        server.shutdown()
        server.server_close()
    assert body["status"] == "complete"
    assert "served_ms" not in body["shards"][0]
    assert "injected_ms" not in body["shards"][0]
    assert "gateway_shard_server_timing_unknown_total 1.0" in exposition
    assert 'gateway_shard_overhead_seconds_count{shard="0"} 0.0' in exposition
