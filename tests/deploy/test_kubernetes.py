"""deploy/kubernetes/: every manifest valid against Kubernetes' own schemas (strict: an unknown
field is an error), and wired as the compose deployment is.

The schemas come with ``kubernetes-validate`` (PyPI), which carries the JSON schemas of every
Kubernetes release: nothing is fetched at test time (kubeconform would download them).
"""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import locations
import pytest
import yaml

KUBERNETES = locations.DEPLOY / "kubernetes"
RELEASE = "1.34"  # the Kubernetes release validated against


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, document)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def _kinds() -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for _name, doc in _documents()}


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _flag(args: list[str], name: str) -> str:
    (value,) = [arg.split("=", 1)[1] for arg in args if arg.startswith(f"--{name}=")]
    return value


@pytest.mark.parametrize(
    "document", [doc for _name, doc in _documents()],
    ids=[f"{name}:{doc['kind']}/{doc['metadata']['name']}" for name, doc in _documents()],
)  # fmt: skip
def test_every_manifest_is_valid_for_kubernetes_strictly(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, RELEASE, strict=True)
    if document["kind"] != "Namespace":
        assert document["metadata"]["namespace"] == "modstream"


def test_a_broken_manifest_is_refused() -> None:
    """The checker checks: a misspelt field and a wrong type are both errors."""
    scorer = _kinds()[("Deployment", "modstream-scorer")]
    misspelt = yaml.safe_load(yaml.safe_dump(scorer))
    misspelt["spec"]["replica"] = misspelt["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, RELEASE, strict=True)
    wrong = yaml.safe_load(yaml.safe_dump(scorer))
    wrong["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, RELEASE, strict=True)


def test_scorers_are_a_deployment_no_larger_than_the_partitions_ready_from_readyz() -> None:
    kinds = _kinds()
    script = _container(kinds[("Job", "modstream-topics")])["args"][0]
    partitions = int(re.search(r'create --topic "\$topic" --partitions (\d+)', script).group(1))  # type: ignore[union-attr]
    scorer = kinds[("Deployment", "modstream-scorer")]
    assert 1 <= scorer["spec"]["replicas"] <= partitions
    container = _container(scorer)
    args = container["args"]
    assert args[:2] == ["run", "--role=scorer"]
    assert int(_flag(args, "partitions")) == partitions
    assert _flag(args, "wait-for-broker") == "180"
    # The delivery is the ConfigMap's, at least once unless a deployment opts in.
    assert _flag(args, "delivery") == "$(DELIVERY)"
    config = kinds[("ConfigMap", "modstream-kafka")]["data"]
    assert config["DELIVERY"] == "at-least-once"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert int(_flag(args, "serve-port")) == ports["http"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    annotations = scorer["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == int(_flag(args, "metrics-port"))
    # The stop drains within the grace period compose gives it too.
    compose = yaml.safe_load((locations.DEPLOY / "docker-compose.yml").read_text())["services"]
    assert scorer["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == int(
        compose["scorer"]["stop_grace_period"].removesuffix("s")
    )
    assert (
        kinds[("Job", "modstream-topics")]["spec"]["template"]["spec"]["containers"][0]["image"]
        == compose["kafka"]["image"]
    )


def test_the_connector_is_one_stateful_replica_with_its_position_in_a_volume() -> None:
    kinds = _kinds()
    connector = kinds[("StatefulSet", "modstream-connector")]
    assert connector["spec"]["replicas"] == 1
    (claim,) = connector["spec"]["volumeClaimTemplates"]
    container = _container(connector)
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/modstream"  # MODSTREAM_STATE_DIR
    assert "MODSTREAM_STATE_DIR=/var/lib/modstream" in (locations.DEPLOY / "Dockerfile").read_text()
    args = container["args"]
    assert {"run", "--role=connector"} <= set(args)
    annotations = connector["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == int(_flag(args, "metrics-port"))
    assert connector["spec"]["serviceName"] in {name for kind, name in kinds if kind == "Service"}


def test_serve_is_behind_a_service_ready_from_readyz_and_every_pod_is_scraped() -> None:
    kinds = _kinds()
    serve = kinds[("Deployment", "modstream-serve")]
    container = _container(serve)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = kinds[("Service", "modstream-serve")]
    assert service["spec"]["selector"] == serve["spec"]["selector"]["matchLabels"]
    for (kind, name), workload in kinds.items():
        if kind in ("Deployment", "StatefulSet"):
            pod = workload["spec"]["template"]
            assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true", name
            assert pod["spec"]["securityContext"]["runAsNonRoot"] is True, name
            assert _container(workload)["image"] == "modstream:latest", name


def test_verdicts_are_two_replicas_behind_a_service_ready_from_readyz() -> None:
    """Two verdict replicas (either answers while the other restarts), both behind one Service on
    the port the command opens, ready once the verdict topic is read; compose runs the same
    command in its `verdicts` profile."""
    kinds = _kinds()
    verdicts = kinds[("Deployment", "modstream-verdicts")]
    assert verdicts["spec"]["replicas"] == 2
    container = _container(verdicts)
    args = container["args"]
    assert args[0] == "verdicts" and _flag(args, "host") == "0.0.0.0"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert int(_flag(args, "port")) == ports["http"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = kinds[("Service", "modstream-verdicts")]
    assert service["spec"]["selector"] == verdicts["spec"]["selector"]["matchLabels"]
    budget = kinds[("PodDisruptionBudget", "modstream-verdicts")]
    assert budget["spec"]["minAvailable"] == 1
    compose = yaml.safe_load((locations.DEPLOY / "docker-compose.yml").read_text())["services"]
    assert compose["verdicts"]["profiles"] == ["verdicts"]
    assert f"--port={ports['http']}" in compose["verdicts"]["command"]
