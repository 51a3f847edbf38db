"""deploy/swarm and deploy/k8s checked without an engine: the swarm stack wired as the
compose stack is (20 shards, the same zones and URLs), every service reached by DNS, the
token a secret, Prometheus finding every shard the stack runs; and the Kubernetes
manifests kept equal to it where the Kubernetes page's table says they are."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from gateway.settings import GatewaySettings
from shardstack.launcher.prometheus import RULES_FILE
from tests.deploy.test_prometheus import _promtool

ROOT = Path(__file__).parents[2]
SWARM = ROOT / "deploy" / "swarm"
K8S = ROOT / "deploy" / "k8s" / "base"
TOKEN_FILE = "/run/secrets/admin_token"


def _stack() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((SWARM / "stack.yml").read_text())
    return loaded


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _k8s(kind: str, name: str) -> dict[str, Any]:
    [found] = [
        document
        for path in K8S.glob("*.yaml")
        for document in yaml.safe_load_all(path.read_text())
        if document.get("kind") == kind and document["metadata"]["name"] == name
    ]
    return found


def test_the_shards_are_the_compose_stacks() -> None:
    services = _stack()["services"]
    shards = sorted(name for name in services if name.startswith("shard-"))
    assert shards == [f"shard-{index:02d}" for index in range(20)]
    compose = _compose()["services"]
    for name in shards:
        environment = services[name]["environment"]
        assert environment["SHARD_ID"] == compose[name]["environment"]["SHARD_ID"]
        assert environment["SHARD_ZONE"] == compose[name]["environment"]["SHARD_ZONE"]
        assert environment["SHARD_LATENCY"] == compose[name]["environment"]["SHARD_LATENCY"]
        assert environment["SHARDSTACK_ADMIN_TOKEN_FILE"] == TOKEN_FILE
    gateway = services["gateway"]["environment"]
    for setting in ("GATEWAY_SHARD_URLS", "GATEWAY_SHARD_ZONES"):
        assert gateway[setting] == compose["gateway"]["environment"][setting]


def test_every_service_is_found_by_dns_and_the_gateway_updates_start_first() -> None:
    services = _stack()["services"]
    # Service VIPs and the routing mesh need IPVS; DNS round robin works on any kernel.
    assert {name: s["deploy"]["endpoint_mode"] for name, s in services.items()} == dict.fromkeys(
        services, "dnsrr"
    )
    deploy = services["gateway"]["deploy"]
    assert deploy["replicas"] == "${GATEWAY_REPLICAS:-3}"
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["rollback_config"]["order"] == "start-first"
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert {port["mode"] for port in published} == {"host"}


def test_the_token_is_a_secret_file_never_an_environment_variable() -> None:
    stack = _stack()
    assert stack["secrets"]["admin_token"]["external"] is True
    for name, service in stack["services"].items():
        assert "SHARDSTACK_ADMIN_TOKEN" not in service.get("environment", {}), name
        if name.startswith("shard-") or name == "gateway":
            [secret] = service["secrets"]
            assert (secret["source"], "/run/secrets/" + secret["target"]) == (
                "admin_token",
                TOKEN_FILE,
            )


def test_prometheus_finds_every_shard_and_replica_the_stack_runs(tmp_path: Path) -> None:
    config = yaml.safe_load((SWARM / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    [gateway] = jobs["gateway"]["dns_sd_configs"]
    assert (gateway["names"], gateway["port"]) == (["tasks.gateway"], 8000)
    [shards] = jobs["shards"]["dns_sd_configs"]
    services = _stack()["services"]
    assert shards["names"] == [f"tasks.{name}" for name in services if name.startswith("shard-")]
    # Each shard labelled by its id, as the compose stack's static targets are.
    [relabel] = jobs["shards"]["relabel_configs"]
    for name in shards["names"]:
        assert re.fullmatch(relabel["regex"], name) is not None
    assert [re.sub(relabel["regex"], r"\1", n) for n in shards["names"]] == [
        str(index) for index in range(20)
    ]
    shutil.copy(SWARM / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(RULES_FILE, tmp_path / "rules.yml")
    checked = _promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_front_door_balances_over_every_replica_dns_lists() -> None:
    haproxy = (SWARM / "haproxy.cfg").read_text()
    assert re.search(r"server-template gateway \d+ tasks\.gateway:8000 check", haproxy)
    assert "retry-on conn-failure" in haproxy


def test_the_front_door_gives_a_slow_client_no_more_time_than_the_gateway_does() -> None:
    haproxy = (SWARM / "haproxy.cfg").read_text()
    timeouts = dict(re.findall(r"^\s+timeout ([\w-]+) (\d+)s$", haproxy, re.MULTILINE))
    gateway = GatewaySettings.model_fields
    assert int(timeouts["http-request"]) == gateway["header_timeout_s"].default
    assert int(timeouts["http-keep-alive"]) == gateway["keepalive_s"].default
    assert int(timeouts["client"]) <= 60


def test_every_service_is_confined_and_only_the_front_door_is_published() -> None:
    services = _stack()["services"]
    for name, service in services.items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"lb"}
    # Prometheus, unauthenticated, only when its own file is deployed beside the stack.
    extra = yaml.safe_load((SWARM / "prometheus-port.yml").read_text())
    assert set(extra["services"]) == {"prometheus"}
    [port] = extra["services"]["prometheus"]["ports"]
    assert port["target"] == 9090


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    [container] = workload["spec"]["template"]["spec"]["containers"]
    return container


def test_kubernetes_runs_what_the_swarm_stack_runs() -> None:
    services = _stack()["services"]
    gateway, pod = services["gateway"], _k8s("Deployment", "gateway")
    assert pod["spec"]["replicas"] == 3
    assert _k8s("HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] == 3
    assert pod["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    container = _container(pod)
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["GATEWAY_WORKERS"] == "1"
    assert gateway["environment"]["GATEWAY_WORKERS"] == "${GATEWAY_WORKERS:-1}"
    assert env["SHARDSTACK_ADMIN_TOKEN_FILE"] == TOKEN_FILE
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert gateway["deploy"]["resources"]["limits"] == {"cpus": "1", "memory": "1G"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["healthcheck"]["test"][-1] == "http://127.0.0.1:8000/healthz"

    shard = _container(_k8s("StatefulSet", "shard"))
    assert shard["resources"]["limits"] == {"memory": "128Mi"}
    assert services["shard-00"]["deploy"]["resources"]["limits"] == {"memory": "128M"}
    shard_env = {item["name"]: item["value"] for item in shard["env"]}
    assert shard_env["SHARDSTACK_ADMIN_TOKEN_FILE"] == TOKEN_FILE
