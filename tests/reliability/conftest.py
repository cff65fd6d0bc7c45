"""Fixtures of the fault-injection suite: one tiny real model artifact shared read-only by the
tests that do not tamper with artifacts, and a per-test worker environment (unique topics,
consumer group and feed keys) with that model announced."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.worker_harness import WorkerEnv, announce, build_artifact

from streamrec.local.services import EmbeddedServices
from streamrec.serving.registry import ArtifactRef


@pytest.fixture(scope="session")
def shared_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ArtifactRef]:
    registry = tmp_path_factory.mktemp("shared-registry")
    return registry, build_artifact(registry, seed=0)


@pytest.fixture
def wenv(
    services: EmbeddedServices, unique_prefix: str, tmp_path: Path, shared_model: tuple[Path, ArtifactRef]
) -> WorkerEnv:
    registry, ref = shared_model
    env = WorkerEnv(services.broker, services.redis, unique_prefix, tmp_path / "data", registry)
    env.create_topics()
    announce(env.broker, env.topics["models"], ref)
    return env
