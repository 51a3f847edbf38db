"""deploy/k8s/base: every resource valid against the Kubernetes schema (strict, so an
unknown field fails), and wired as the product needs: 20 shards with stable names the
gateway's URLs point at, Prometheus annotations on the metrics ports, an autoscaled
gateway."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.settings import GatewaySettings

BASE = Path(__file__).parents[2] / "deploy" / "k8s" / "base"
KUBERNETES = "1.30"


def _kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return loaded


def _resources() -> list[dict[str, Any]]:
    return [
        document
        for name in _kustomization()["resources"]
        for document in yaml.safe_load_all((BASE / name).read_text())
    ]


def _named(kind: str, name: str) -> dict[str, Any]:
    [found] = [r for r in _resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def test_the_kustomization_lists_every_manifest() -> None:
    manifests = {path.name for path in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(_kustomization()["resources"]) == manifests


@pytest.mark.parametrize(
    "resource", _resources(), ids=lambda r: f"{r['kind']}/{r['metadata']['name']}"
)
def test_every_resource_is_valid_kubernetes(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, KUBERNETES, strict=True)


def test_the_validator_catches_a_wrong_field() -> None:
    broken = copy.deepcopy(_named("Deployment", "gateway"))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def _env(workload: dict[str, Any]) -> dict[str, Any]:
    [container] = workload["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_the_gateway_reaches_every_shard_by_its_stable_name() -> None:
    shards = _named("StatefulSet", "shard")
    service = _named("Service", "shard")
    assert service["spec"]["clusterIP"] == "None"
    assert shards["spec"]["serviceName"] == "shard"
    settings = GatewaySettings(
        shard_urls=_env(_named("Deployment", "gateway"))["GATEWAY_SHARD_URLS"]
    )
    assert settings.shard_urls == tuple(
        f"http://shard-{index}.shard:9000" for index in range(shards["spec"]["replicas"])
    )
    shard_env = _env(shards)
    admin_port = int(shard_env["SHARD_PORT"]) + settings.shard_admin_port_offset
    assert int(shard_env["SHARD_ADMIN_PORT"]) == admin_port


def test_both_read_the_admin_token_secret_as_a_file() -> None:
    for workload in (_named("StatefulSet", "shard"), _named("Deployment", "gateway")):
        assert "SHARDSTACK_ADMIN_TOKEN" not in _env(workload)
        token_file = Path(_env(workload)["SHARDSTACK_ADMIN_TOKEN_FILE"])
        spec = workload["spec"]["template"]["spec"]
        [container] = spec["containers"]
        [mount] = [m for m in container["volumeMounts"] if m["name"] == "admin-token"]
        assert mount["mountPath"] == str(token_file.parent)
        [volume] = [v for v in spec["volumes"] if v["name"] == "admin-token"]
        assert volume["secret"]["secretName"] == "shardstack-admin-token"
        assert volume["secret"]["items"] == [{"key": "token", "path": token_file.name}]
        # Readable by the image's user through its group, by no one else.
        assert spec["securityContext"]["fsGroup"] == 10001
        assert volume["secret"]["defaultMode"] == 0o440


@pytest.mark.parametrize(("kind", "name"), [("StatefulSet", "shard"), ("Deployment", "gateway")])
def test_prometheus_annotations_name_a_metrics_port(kind: str, name: str) -> None:
    template = _named(kind, name)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    [container] = template["spec"]["containers"]
    ports = {port["containerPort"] for port in container["ports"]}
    assert int(annotations["prometheus.io/port"]) in ports


def test_the_gateway_is_autoscaled() -> None:
    hpa = _named("HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gateway",
    }
    assert hpa["spec"]["minReplicas"] >= 3


@pytest.mark.parametrize(("kind", "name"), [("Deployment", "gateway"), ("StatefulSet", "shard")])
def test_pods_run_confined(kind: str, name: str) -> None:
    pod = _named(kind, name)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    confined = container["securityContext"]
    assert confined["readOnlyRootFilesystem"] is True
    assert confined["allowPrivilegeEscalation"] is False
    assert confined["capabilities"] == {"drop": ["ALL"]}


def test_only_the_gateway_reaches_the_data_ports_and_only_operators_the_admin_ports() -> None:
    shard = _named("NetworkPolicy", "shard")["spec"]
    assert shard["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "shard"}
    assert shard["policyTypes"] == ["Ingress"]
    allowed = {
        (port["port"], str(source["podSelector"]["matchLabels"]))
        for rule in shard["ingress"]
        for source in rule["from"]
        for port in rule["ports"]
    }
    gateway = str({"app.kubernetes.io/name": "gateway"})
    operator = str({"shardstack.io/operator": "true"})
    assert allowed == {("data", gateway), ("admin", gateway), ("admin", operator)}
    # The named ports are the shard container's own.
    [container] = _named("StatefulSet", "shard")["spec"]["template"]["spec"]["containers"]
    assert {port["name"] for port in container["ports"]} == {"data", "admin"}
    front = _named("NetworkPolicy", "gateway")["spec"]
    assert front["ingress"] == [{"ports": [{"port": "http"}]}]
