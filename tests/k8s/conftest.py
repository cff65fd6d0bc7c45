"""Fixtures of the k8s tests: the repository's k8s/ tree rendered per overlay, offline."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
OVERLAYS = ("dev", "gpu")


def _load_helper() -> ModuleType:
    # pytest runs with --import-mode=importlib: sibling modules are not importable by name.
    name = "streamrec_tests_kustomize_lite"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("kustomize_lite.py"))
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def kl() -> ModuleType:
    """The renderer / NetworkPolicy-evaluator module."""
    return _load_helper()


@pytest.fixture(scope="session")
def rendered(kl: ModuleType) -> dict[str, list[dict[str, Any]]]:
    """overlay name (and "base") -> rendered objects."""
    out = {name: kl.render(K8S / "overlays" / name) for name in OVERLAYS}
    out["base"] = kl.render(K8S / "base")
    return out
