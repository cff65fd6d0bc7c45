"""k8s/ renders: layout conventions, and the Python renderer agrees with real kustomize."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "k8s"
TREES = ["base", "overlays/dev", "overlays/gpu"]
# Strimzi's convention: NNN-Kind-name.yaml, numbered in install order.
FILE_NAME = re.compile(r"^(\d{3})-([A-Za-z]+)-([a-z0-9.-]+)\.yaml$")


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


def test_base_files_are_numbered_kind_named_and_all_listed(kl: ModuleType) -> None:
    (kust,) = kl.load_yaml_docs(K8S / "base" / "kustomization.yaml")
    files = sorted(p.name for p in (K8S / "base").glob("*.yaml") if p.name != "kustomization.yaml")
    assert kust["resources"] == files, "every base file listed once, in file-name (install) order"
    for name in files:
        m = FILE_NAME.match(name)
        assert m, f"{name}: expected NNN-Kind-name.yaml"
        (doc,) = kl.load_yaml_docs(K8S / "base" / name)
        assert doc["kind"] == m.group(2), f"{name} holds a {doc['kind']}"
        assert doc["metadata"]["name"].endswith(m.group(3)), f"{name} holds {doc['metadata']['name']}"


@pytest.mark.parametrize("tree", TREES)
def test_renders_with_supported_subset(kl: ModuleType, tree: str) -> None:
    docs = kl.render(K8S / tree)
    assert docs, tree
    assert all(d["metadata"].get("namespace") == "streamrec" for d in docs if d["kind"] != "Namespace")


@pytest.mark.parametrize("tree", TREES)
def test_python_renderer_matches_kustomize(kl: ModuleType, tree: str) -> None:
    """The Python renderer is only trusted because it matches kustomize where kustomize exists."""
    if shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(K8S / tree)]
    elif shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", str(K8S / tree)]
    else:
        pytest.skip("neither kustomize nor kubectl on PATH; the Python renderer is used alone")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    theirs = {_key(d): d for d in yaml.safe_load_all(out) if d}
    ours = {_key(d): d for d in kl.render(K8S / tree)}
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == theirs[key], key


def test_overlays_differ_from_base_only_where_intended(rendered: dict[str, list[dict[str, Any]]]) -> None:
    base = {_key(d) for d in rendered["base"]}
    dev = {_key(d) for d in rendered["dev"]}
    gpu = {_key(d) for d in rendered["gpu"]}
    assert gpu == base
    assert base - dev == {
        ("ScaledObject", "streamrec", "streamrec-worker"),
        ("TriggerAuthentication", "streamrec", "streamrec-worker-kafka"),
    }
    assert dev - base == {("Secret", "streamrec", "streamrec-redis"), ("Secret", "streamrec", "streamrec-api-tokens")}


def test_trainer_waits_for_its_initial_model(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]]) -> None:
    pod = kl.one(rendered["base"], "Deployment", "streamrec-trainer")["spec"]["template"]["spec"]
    (wait,) = pod["initContainers"]
    (trainer,) = pod["containers"]
    init_dir = trainer["args"][trainer["args"].index("--init-model") + 1]
    assert f"[ -d {init_dir} ]" in wait["command"][-1]
    assert wait["image"] == trainer["image"]
    assert {m["name"] for m in wait["volumeMounts"]} >= {"data"}
