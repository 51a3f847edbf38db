"""Prometheus beside the local stack: its configuration and how to run it.

`scrape_config` is the one description of what Prometheus scrapes; the compose stack's
deploy/prometheus/prometheus.yml is the same configuration for its container names (a
test holds the two together). The recording rules are prometheus_rules.yml beside this.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

from shardstack.launcher.supervisor import ProcessSpec

PROMETHEUS = "prometheus"
# The recording rules ship in the package; the compose stack mounts this same file.
RULES_FILE = Path(__file__).resolve().parent / "prometheus_rules.yml"
SCRAPE_INTERVAL = "1s"


def scrape_config(
    gateway: str | None,
    shards: Sequence[tuple[int, str]],
    prometheus: str,
    rule_files: Sequence[str],
) -> dict[str, Any]:
    """Scrape the gateway (if there is one), every shard's admin port (labelled with its
    id) and Prometheus itself every second: short enough to watch a fault land."""
    gateways = [] if gateway is None else [job("gateway", [{"targets": [gateway]}])]
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "rule_files": list(rule_files),
        "scrape_configs": [
            *gateways,
            job(
                "shards",
                [
                    {"targets": [address], "labels": {"shard": str(shard_id)}}
                    for shard_id, address in shards
                ],
            ),
            job(PROMETHEUS, [{"targets": [prometheus]}]),
        ],
    }


def job(name: str, targets: list[dict[str, Any]]) -> dict[str, Any]:
    return {"job_name": name, "static_configs": targets}


def find_binary() -> Path | None:
    found = shutil.which(PROMETHEUS)
    return Path(found) if found else None


@dataclass(frozen=True)
class PrometheusPlan:
    """A Prometheus to run: the binary, where it listens, and what it scrapes."""

    binary: Path
    host: str
    port: int
    config: dict[str, Any]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def graph_url(self, *expressions: str) -> str:
        """A link to Prometheus's graph page with `expressions` plotted over 5 minutes."""
        params: dict[str, str] = {}
        for index, expression in enumerate(expressions):
            params |= {f"g{index}.expr": expression, f"g{index}.range_input": "5m"}
        return f"{self.url}/graph?{urlencode(params)}"

    def spec(self, work_dir: Path) -> ProcessSpec:
        """Write the configuration under `work_dir` and describe the process; each start
        gets an empty database, so a graph shows this run only."""
        config_path = work_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        data_dir = work_dir / "prometheus-data"
        shutil.rmtree(data_dir, ignore_errors=True)
        return ProcessSpec(
            name=PROMETHEUS,
            argv=(
                str(self.binary),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address={self.host}:{self.port}",
                "--log.level=warn",
            ),
            env=dict(os.environ),
            ready_url=f"{self.url}/-/ready",
            ports=((self.host, self.port),),
        )
