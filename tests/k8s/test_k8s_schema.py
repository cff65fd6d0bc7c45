"""Every rendered object validates offline.

Built-in kinds: kubernetes-validate, strict (unknown fields are errors), against the oldest
Kubernetes we support and the newest schema it bundles. Custom resources (Strimzi, KEDA,
Prometheus Operator) have no bundled schema: they are checked structurally here (apiVersion,
kind, the fields their operators require, and the values we depend on). That is weaker than
the CRDs' OpenAPI schemas, which would have to be vendored.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest

OVERLAYS = ["base", "dev", "gpu"]
# 1.30: the oldest release still supported upstream when this was written; the StatefulSet
# PVC retention policy used here is beta (on by default) since 1.27.
K8S_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]

CRD_API = {
    "Kafka": "kafka.strimzi.io/v1beta2",
    "KafkaNodePool": "kafka.strimzi.io/v1beta2",
    "KafkaTopic": "kafka.strimzi.io/v1beta2",
    "KafkaUser": "kafka.strimzi.io/v1beta2",
    "ScaledObject": "keda.sh/v1alpha1",
    "TriggerAuthentication": "keda.sh/v1alpha1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
}
SECURITY_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def _get(doc: dict[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        assert isinstance(node, dict) and part in node, f"{doc['kind']}/{doc['metadata']['name']}: missing {path}"
        node = node[part]
    return node


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_builtin_kinds_validate_strictly(
    kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str, version: str
) -> None:
    builtin = [d for d in rendered[overlay] if kl.is_builtin(d)]
    assert {d["kind"] for d in builtin} >= {"StatefulSet", "Deployment", "Service", "ConfigMap", "NetworkPolicy"}
    for doc in builtin:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{overlay} {doc['kind']}/{doc['metadata']['name']} on {version}: {exc.message} at {exc.path}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_custom_resource_is_a_known_kind(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str):
    for doc in rendered[overlay]:
        if kl.is_builtin(doc):
            continue
        assert doc["kind"] in CRD_API, f"no structural check for {doc['kind']}"
        assert doc["apiVersion"] == CRD_API[doc["kind"]], doc["metadata"]["name"]
        assert doc["metadata"]["name"] and doc["metadata"]["namespace"] == "streamrec"


def _check_strimzi_security(template: dict[str, Any], pod_key: str, containers: list[str]) -> None:
    pod = template[pod_key]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault"
    for c in containers:
        assert template[c]["securityContext"] == SECURITY_CONTAINER, c


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_strimzi_resources_structure(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    kafka = kl.one(docs, "Kafka", "streamrec")
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    assert str(_get(kafka, "spec.kafka.version")).startswith("4.")
    listeners = _get(kafka, "spec.kafka.listeners")
    for listener in listeners:
        for field in ("name", "port", "type", "tls"):
            assert field in listener, f"listener without {field}"
    assert _get(kafka, "spec.kafka.authorization.type") == "simple"
    assert "topicOperator" in kafka["spec"]["entityOperator"] and "userOperator" in kafka["spec"]["entityOperator"]
    _check_strimzi_security(kafka["spec"]["kafka"]["template"], "pod", ["kafkaContainer"])
    _check_strimzi_security(
        kafka["spec"]["entityOperator"]["template"], "pod", ["topicOperatorContainer", "userOperatorContainer"]
    )
    for op in ("topicOperator", "userOperator"):
        res = kafka["spec"]["entityOperator"][op]["resources"]
        assert res["requests"]["memory"] == res["limits"]["memory"]

    pools = kl.find(docs, "KafkaNodePool")
    assert pools
    for pool in pools:
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "streamrec"
        assert set(_get(pool, "spec.roles")) <= {"controller", "broker"}
        assert _get(pool, "spec.replicas") >= 1
        storage = _get(pool, "spec.storage")
        assert storage["type"] in ("jbod", "persistent-claim", "ephemeral")
        if storage["type"] == "jbod":
            assert any(v.get("kraftMetadata") == "shared" for v in storage["volumes"])
            assert all({"id", "type"} <= set(v) for v in storage["volumes"])
        res = _get(pool, "spec.resources")
        assert res["requests"]["memory"] == res["limits"]["memory"]

    for topic in kl.find(docs, "KafkaTopic"):
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "streamrec"
        assert isinstance(_get(topic, "spec.partitions"), int) and topic["spec"]["partitions"] >= 1
        assert isinstance(_get(topic, "spec.replicas"), int)
        assert topic["spec"]["config"]["cleanup.policy"] in ("delete", "compact")

    for user in kl.find(docs, "KafkaUser"):
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "streamrec"
        assert _get(user, "spec.authentication.type") in ("scram-sha-512", "tls")
        for acl in _get(user, "spec.authorization.acls"):
            assert acl["resource"]["type"] in ("topic", "group", "cluster", "transactionalId")
            assert acl["resource"].get("patternType", "literal") in ("literal", "prefix")
            assert acl["operations"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_and_monitoring_structure(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str):
    docs = rendered[overlay]
    for so in kl.find(docs, "ScaledObject"):
        ref = _get(so, "spec.scaleTargetRef")
        assert kl.find(docs, ref["kind"], ref["name"]), "scale target exists"
        assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
        for trig in _get(so, "spec.triggers"):
            assert trig["type"] and trig["metadata"]
            if "authenticationRef" in trig:
                assert kl.find(docs, "TriggerAuthentication", trig["authenticationRef"]["name"])
    for ta in kl.find(docs, "TriggerAuthentication"):
        for ref in ta["spec"].get("secretTargetRef", []):
            assert set(ref) == {"parameter", "name", "key"}
        for ref in ta["spec"].get("env", []):
            assert {"parameter", "name"} <= set(ref)
    for sm in kl.find(docs, "ServiceMonitor"):
        assert _get(sm, "spec.selector.matchLabels")
        for ep in _get(sm, "spec.endpoints"):
            assert ep.get("port") or ep.get("targetPort")
    for rule in kl.find(docs, "PrometheusRule"):
        for group in _get(rule, "spec.groups"):
            assert group["name"] and group["rules"]
            for r in group["rules"]:
                assert ("alert" in r) != ("record" in r) and r["expr"]
