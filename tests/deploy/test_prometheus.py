"""The Prometheus and Grafana files under deploy/: valid for promtool, rules that compute
what their names say, one scrape configuration for both ways of running the stack, and a
dashboard wired to the datasource the compose stack provisions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from shardstack.launcher.prometheus import RULES_FILE, scrape_config
from tests.support import require_binary

ROOT = Path(__file__).parents[2]
COMPOSE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args], capture_output=True, text=True, cwd=ROOT
    )


def test_the_compose_configuration_is_the_one_shardstack_up_generates() -> None:
    compose = yaml.safe_load(COMPOSE_CONFIG.read_text())
    generated = scrape_config(
        gateway="gateway:8000",
        shards=[(shard, f"shard-{shard:02d}:10000") for shard in range(20)],
        prometheus="localhost:9090",
        rule_files=["rules.yml"],  # where docker-compose.yml mounts RULES_FILE
    )
    assert compose == generated


def test_promtool_accepts_the_configuration_and_rules(tmp_path: Path) -> None:
    # Laid out as docker-compose.yml mounts them under /etc/prometheus.
    shutil.copy(COMPOSE_CONFIG, tmp_path / "prometheus.yml")
    shutil.copy(RULES_FILE, tmp_path / "rules.yml")
    checked = _promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "9 rules found" in checked.stdout


def test_recording_rules_compute_what_they_say() -> None:
    tested = _promtool("test", "rules", "tests/deploy/prometheus_rules_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_the_dashboard_uses_the_provisioned_datasource_and_a_sound_layout() -> None:
    [datasource] = _yaml(GRAFANA / "provisioning/datasources/prometheus.yml")["datasources"]
    [provider] = _yaml(GRAFANA / "provisioning/dashboards/shardstack.yml")["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboard = json.loads((GRAFANA / "dashboards/shardstack.json").read_text())

    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        assert panel["datasource"]["uid"] == datasource["uid"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"]
            assert target["expr"].strip()
    [variable] = dashboard["templating"]["list"]
    assert variable["datasource"]["uid"] == datasource["uid"]
