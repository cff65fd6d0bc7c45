"""Fixtures of the unit tests: artifacts exported from the stand-in tower (support.export_artifacts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.export_artifacts import build

from streamrec.export.exporter import ExportResult
from streamrec.serving.registry import LocalRegistry


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalRegistry, ExportResult]:
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    return registry, build(registry)


@pytest.fixture()
def registry(tmp_path: Path) -> LocalRegistry:
    return LocalRegistry(tmp_path / "registry")
