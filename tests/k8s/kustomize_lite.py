"""Offline helpers for the k8s tests: a small kustomize renderer and a NetworkPolicy evaluator.

The renderer covers exactly the subset of kustomize that ``k8s/`` uses: ``resources`` (files
and directories), ``patches`` (strategic-merge patches matched by kind/name or by a
``target`` of kind[/name], ``$patch: delete``) and ``images``. Anything else in a
kustomization is an error, so the tree cannot drift past what is tested. When ``kubectl``
or ``kustomize`` is on PATH, ``test_k8s_render`` checks that both render the same objects.

Strategic merge follows kustomize: built-in kinds merge lists by their patch merge key
(containers and env by name, volumeMounts by mountPath, ...), custom resources (no schema)
merge maps and replace lists; ``null`` deletes a key.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]

SUPPORTED_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "patches", "images"}

# patchMergeKey of the list fields that k8s/ patches, per Kubernetes' OpenAPI.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not implement."""


def is_builtin(doc: Mapping[str, Any]) -> bool:
    """Built-in API groups: core ("v1"), unqualified ("apps/v1") and *.k8s.io."""
    api = str(doc.get("apiVersion", ""))
    group = api.rsplit("/", 1)[0] if "/" in api else ""
    return "." not in group or group.endswith(".k8s.io")


def load_yaml_docs(path: Path) -> list[Doc]:
    with path.open() as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


def _merge_list(base: list[Any], patch: list[Any], key: str, builtin: bool) -> list[Any]:
    out = [copy.deepcopy(x) for x in base]
    for item in patch:
        idx = next((i for i, b in enumerate(out) if isinstance(b, dict) and b.get(key) == item.get(key)), None)
        if idx is None:
            out.append(copy.deepcopy(item))
        elif item.get("$patch") == "delete":
            del out[idx]
        else:
            out[idx] = strategic_merge(out[idx], item, builtin, parent=key)
    return out


def strategic_merge(base: Any, patch: Any, builtin: bool, parent: str = "") -> Any:
    """Merge ``patch`` into a copy of ``base`` (kustomize semantics for what k8s/ uses)."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if key == "$patch":
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = strategic_merge(out[key], value, builtin, parent=key)
        elif isinstance(value, list) and isinstance(out.get(key), list) and builtin:
            merge_key = _MERGE_KEYS.get(key)
            if key == "ports":
                merge_key = "containerPort" if parent.endswith("ontainers") else "port"
            if merge_key and all(isinstance(x, dict) for x in value):
                out[key] = _merge_list(out[key], value, merge_key, builtin)
            else:
                out[key] = copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _matches(doc: Doc, kind: str | None, name: str | None, namespace: str | None) -> bool:
    meta = doc.get("metadata", {})
    return (
        (kind is None or doc.get("kind") == kind)
        and (name is None or meta.get("name") == name)
        and (namespace is None or meta.get("namespace") == namespace)
    )


def pod_template(doc: Doc) -> Doc | None:
    """The pod template (metadata + spec) of a workload: ``spec.template`` of a Deployment or
    StatefulSet, ``spec.jobTemplate.spec.template`` of a CronJob; None for other kinds."""
    spec = doc.get("spec", {})
    if doc.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    return template if isinstance(template, dict) and isinstance(template.get("spec"), dict) else None


def _pod_specs(doc: Doc) -> Iterable[Doc]:
    if doc.get("kind") == "Pod":
        yield doc.get("spec", {})
    elif (template := pod_template(doc)) is not None:
        yield template["spec"]


def _apply_images(docs: list[Doc], images: list[Doc]) -> None:
    for rule in images:
        for doc in docs:
            for pod in _pod_specs(doc):
                for c in [*pod.get("initContainers", []), *pod.get("containers", [])]:
                    ref = c.get("image", "")
                    repo, _, _tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
                    if repo != rule["name"]:
                        continue
                    new_repo = rule.get("newName", repo)
                    new_tag = rule.get("newTag", _tag)
                    c["image"] = f"{new_repo}:{new_tag}" if new_tag else new_repo
                    if rule.get("digest"):
                        c["image"] = f"{new_repo}@{rule['digest']}"


def render(directory: Path) -> list[Doc]:
    """``kustomize build directory`` for the subset described in the module docstring."""
    directory = Path(directory)
    kfile = directory / "kustomization.yaml"
    (kust,) = load_yaml_docs(kfile)
    unknown = set(kust) - SUPPORTED_KUSTOMIZATION_KEYS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported keys {sorted(unknown)} (extend tests/k8s/kustomize_lite.py)")
    docs: list[Doc] = []
    for res in kust.get("resources", []):
        path = directory / res
        docs.extend(render(path) if path.is_dir() else load_yaml_docs(path))
    for entry in kust.get("patches", []):
        if set(entry) - {"path", "target"}:
            raise KustomizeError(f"{kfile}: only path/target patches are supported: {entry}")
        (patch,) = load_yaml_docs(directory / entry["path"])
        target = entry.get("target")
        if target:
            if set(target) - {"kind", "name", "namespace"}:
                raise KustomizeError(f"{kfile}: target selectors other than kind/name/namespace: {target}")
            kind, name, ns = target.get("kind"), target.get("name"), target.get("namespace")
        else:
            meta = patch.get("metadata", {})
            kind, name, ns = patch.get("kind"), meta.get("name"), meta.get("namespace")
        hits = [i for i, d in enumerate(docs) if _matches(d, kind, name, ns)]
        if not hits:
            raise KustomizeError(f"{kfile}: patch {entry['path']} matches no resource")
        if patch.get("$patch") == "delete":
            docs = [d for i, d in enumerate(docs) if i not in hits]
            continue
        for i in hits:
            body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind", "metadata")}
            merged = strategic_merge(docs[i], body, is_builtin(docs[i]))
            patch_meta = {k: v for k, v in patch.get("metadata", {}).items() if k not in ("name", "namespace")}
            merged["metadata"] = strategic_merge(merged["metadata"], patch_meta, True)
            docs[i] = merged
    _apply_images(docs, kust.get("images", []))
    keys = [(d.get("kind"), d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise KustomizeError(f"{directory}: duplicate resources {sorted(map(str, dupes))}")
    return docs


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    hits = find(docs, kind, name)
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def pod_templates(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    """(workload, pod spec) for every object that carries a pod template."""
    return [(d, spec) for d in docs for spec in _pod_specs(d)]


# ---- NetworkPolicy evaluation ------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace + labels + named container ports) or, with ``ip``, a host outside."""

    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    ip: str = ""

    @property
    def is_pod(self) -> bool:
        return not self.ip


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """LabelSelector semantics: {} matches everything."""
    selector = selector or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _peer_matches(
    peer: Mapping[str, Any], policy_ns: str, other: Endpoint, ns_labels: Mapping[str, Mapping[str, str]]
) -> bool:
    if "ipBlock" in peer:
        if other.is_pod:
            return False
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if not other.is_pod:
        return False
    if "namespaceSelector" in peer:
        labels = {**ns_labels.get(other.namespace, {}), "kubernetes.io/metadata.name": other.namespace}
        if not selector_matches(peer["namespaceSelector"], labels):
            return False
    elif other.namespace != policy_ns:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)


def _port_matches(rule_ports: list[Mapping[str, Any]] | None, dst: Endpoint, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        want = p.get("port")
        if want is None:
            return True
        if isinstance(want, str):
            want = dst.ports.get(want)
            if want is None:
                continue
        if want <= port <= p.get("endPort", want):
            return True
    return False


def _policy_types(policy: Mapping[str, Any]) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def connection_allowed(
    policies: list[Doc],
    src: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: str = "TCP",
    ns_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> bool:
    """Whether NetworkPolicies let ``src`` open ``dst:port`` (egress of src and ingress of dst)."""
    ns_labels = ns_labels or {}

    def selecting(ep: Endpoint, direction: str) -> list[Doc]:
        return [
            p
            for p in policies
            if ep.is_pod
            and p["metadata"].get("namespace") == ep.namespace
            and direction in _policy_types(p)
            and selector_matches(p["spec"].get("podSelector"), ep.labels)
        ]

    egress = selecting(src, "Egress")
    if egress and not any(
        (
            not rule.get("to")
            or any(_peer_matches(peer, p["metadata"]["namespace"], dst, ns_labels) for peer in rule["to"])
        )
        and _port_matches(rule.get("ports"), dst, port, protocol)
        for p in egress
        for rule in p["spec"].get("egress") or []
    ):
        return False
    ingress = selecting(dst, "Ingress")
    return not ingress or any(
        (
            not rule.get("from")
            or any(_peer_matches(peer, p["metadata"]["namespace"], src, ns_labels) for peer in rule["from"])
        )
        and _port_matches(rule.get("ports"), dst, port, protocol)
        for p in ingress
        for rule in p["spec"].get("ingress") or []
    )
