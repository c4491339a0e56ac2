"""The Kubernetes manifests as rendered by kustomize: valid against the API's schemas (unknown
keys refused), Pod Security Standards "restricted" with a read-only root on every pod
template, the wiring that a typo would silently break (selectors, named ports, the config
checksum, NetworkPolicy peers), and trivy finding no HIGH or CRITICAL misconfiguration."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.crd_schemas import SCHEMAS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TARGETS = ["base", "overlays/dev", "overlays/prod"]
BIN = Path(sys.executable).parent
BUILT_IN = {"v1", "apps/v1", "autoscaling/v2", "policy/v1", "networking.k8s.io/v1"}
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


@functools.cache
def render(target: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl (1.27 or later, with kustomize built in) is needed on PATH")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / target)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def objects(target: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all(render(target)) if o]


def by_kind(target: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in objects(target) if o["kind"] == kind]


@pytest.mark.parametrize("target", TARGETS)
def test_it_renders_and_validates_strictly(target: str, tmp_path: Path) -> None:
    """Built-in kinds strictly; the operator's kinds have no schema here (see below)."""
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(render(target))
    result = subprocess.run(
        [BIN / "kubernetes-validate", "--strict", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_refuses_a_misspelt_key(tmp_path: Path) -> None:
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(render("base").replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"))
    result = subprocess.run(
        [BIN / "kubernetes-validate", "--strict", str(manifest)], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "'readOnlyRootFileSystem' was unexpected" in result.stdout + result.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_is_restricted_with_a_read_only_root(target: str) -> None:
    [namespace] = by_kind(target, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    templates = [o["spec"]["template"]["spec"] for o in objects(target) if o["kind"] in POD_KINDS]
    assert templates
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                       "persistentVolumeClaim", "projected", "secret"}  # fmt: skip
    for pod in templates:
        assert pod["automountServiceAccountToken"] is False
        pod_context = pod["securityContext"]
        assert pod_context["runAsNonRoot"] is True and pod_context["runAsUser"] != 0
        assert pod_context["seccompProfile"]["type"] in {"RuntimeDefault", "Localhost"}
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        for volume in pod.get("volumes", []):
            assert set(volume) - {"name"} <= allowed_volumes, volume
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert set(context["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}
            assert not context.get("privileged")
            assert container["resources"]["requests"] and container["resources"]["limits"]


@pytest.mark.parametrize("target", TARGETS)
def test_selectors_ports_and_config_are_wired(target: str) -> None:
    [deployment] = by_kind(target, "Deployment")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    [service] = by_kind(target, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    [container] = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # The settings ConfigMap carries a hash of its content in its name: a change rolls pods.
    [config] = [
        o for o in by_kind(target, "ConfigMap") if o["metadata"]["name"].startswith("sentimon-")
    ]
    assert config["metadata"]["name"].startswith("sentimon-config-")
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    # Long enough to wait out the preStop pause, the drain and the store's last write (5 s);
    # the drain outlasts a request's timeout.
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = float(config["data"]["SENTIMON_SHUTDOWN_GRACE_S"])
    assert drain > float(config["data"]["SENTIMON_REQUEST_TIMEOUT_S"])
    assert grace > pause + drain + 5
    [policy] = by_kind(target, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == ["http"]
    dns = policy["spec"]["egress"][0]["to"][0]
    assert dns == {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    for o in objects(target):
        assert o["kind"] == "Namespace" or o["metadata"]["namespace"] == "sentimon", o["kind"]


def test_base_scales_on_cpu_and_keeps_one_pod_through_disruptions() -> None:
    [deployment] = by_kind("base", "Deployment")
    [hpa] = by_kind("base", "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    [pdb] = by_kind("base", "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    url = container["env"][0]
    assert url["valueFrom"]["secretKeyRef"] == {"name": "sentimon-database", "key": "url"}


def test_dev_is_one_replica_on_sqlite_with_scrape_annotations() -> None:
    [deployment] = by_kind("overlays/dev", "Deployment")
    assert deployment["spec"]["replicas"] == 1
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert "env" not in container
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8000",
        "prometheus.io/path": "/metrics",
    }
    assert not by_kind("overlays/dev", "HorizontalPodAutoscaler")
    assert not by_kind("overlays/dev", "PodDisruptionBudget")


@pytest.mark.slow
def test_trivy_finds_no_high_or_critical_misconfiguration(tmp_path: Path) -> None:
    for target in TARGETS:
        (tmp_path / "manifests").mkdir(exist_ok=True)
        (tmp_path / "manifests" / f"{target.replace('/', '-')}.yaml").write_text(render(target))
    result = subprocess.run(
        [
            BIN / "trivy", "config", "--skip-check-update", "--skip-version-check",
            "--cache-dir", str(tmp_path / "cache"), "--exit-code", "1",
            "--severity", "HIGH,CRITICAL", "--quiet", str(tmp_path / "manifests"),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_custom_resources_match_their_schemas_with_unknown_keys_refused(target: str) -> None:
    for o in objects(target):
        if o["kind"] in SCHEMAS:
            jsonschema.validate(o, SCHEMAS[o["kind"]])
        else:  # kubernetes-validate --strict checks these
            assert o["apiVersion"] in BUILT_IN, f"no schema for {o['kind']} ({o['apiVersion']})"


@pytest.mark.parametrize(
    ("kind", "path", "typo"),
    [
        ("ScaledObject", ("spec",), "minReplicas"),
        ("ServiceMonitor", ("spec", "endpoints", 0), "intervall"),
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0), "expression"),
    ],
)
def test_a_misspelt_custom_resource_key_is_refused(
    kind: str, path: tuple[str | int, ...], typo: str
) -> None:
    [o] = [o for o in objects("overlays/prod") if o["kind"] == kind][:1]
    node: Any = o
    for step in path:
        node = node[step]
    node[typo] = 1
    with pytest.raises(jsonschema.ValidationError, match=f"'{typo}' was unexpected"):
        jsonschema.validate(o, SCHEMAS[kind])


def test_prod_scales_with_keda_on_in_flight_requests_instead_of_the_cpu_hpa() -> None:
    [deployment] = by_kind("overlays/prod", "Deployment")
    assert deployment["spec"]["replicas"] >= 2
    assert not by_kind("overlays/prod", "HorizontalPodAutoscaler")  # KEDA makes its own
    [scaled] = by_kind("overlays/prod", "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] >= 2
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    query = trigger["metadata"]["query"]
    assert query.startswith("sum(http_requests_inprogress{") and 'job="sentimon"' in query
    assert float(trigger["metadata"]["threshold"]) > 0
    assert scaled["spec"]["fallback"]["replicas"] >= scaled["spec"]["minReplicaCount"]


def test_prod_runs_an_image_pinned_by_digest() -> None:
    [deployment] = by_kind("overlays/prod", "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert re.fullmatch(r"[\w./-]+@sha256:[0-9a-f]{64}", container["image"]), container["image"]


def test_the_operator_gets_the_repos_rules_a_monitor_of_the_service_and_every_dashboard() -> None:
    rendered = objects("overlays/prod")
    rules = {o["metadata"]["name"]: o for o in rendered if o["kind"] == "PrometheusRule"}
    for path in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yaml")):
        source = yaml.safe_load(path.read_text())["groups"]
        assert rules[f"sentimon-{path.stem}"]["spec"]["groups"] == source, path.name
    [monitor] = [o for o in rendered if o["kind"] == "ServiceMonitor"]
    [service] = [o for o in rendered if o["kind"] == "Service"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    # job = the Service's name: the rules and dashboards select job="sentimon".
    assert service["metadata"]["name"] == "sentimon" and "jobLabel" not in monitor["spec"]
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["http"] and "http" in ports
    dashboards = [
        o
        for o in rendered
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("dashboard-")
    ]
    shipped = sorted(p.name for p in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    assert sorted(name for o in dashboards for name in o["data"]) == shipped
    for o in dashboards:
        assert o["metadata"]["labels"]["grafana_dashboard"] == "1"
        [(name, text)] = o["data"].items()
        assert json.loads(text)["uid"] == name.removesuffix(".json")
        # One object per dashboard, well under client-side apply's 262,144-byte annotation.
        assert len(text) < 200_000
