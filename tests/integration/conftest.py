"""Fixtures for worker integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.api_harness import serve_api
from support.worker_harness import WorkerEnv

from streamrec.local.services import EmbeddedServices


@pytest.fixture
def wenv(services: EmbeddedServices, unique_prefix: str, tmp_path: Path) -> WorkerEnv:
    """Topics, data dir and registry of one worker test, named after the test."""
    env = WorkerEnv(services.broker, services.redis, unique_prefix, tmp_path / "data", tmp_path / "registry")
    env.create_topics()
    return env


@pytest.fixture
def api(wenv: WorkerEnv, tmp_path: Path) -> Iterator[tuple]:
    """(client, wenv, settings) of an API over this test's topics, Redis prefix and registry."""
    with serve_api(wenv, tmp_path / "data") as (client, settings):
        yield client, wenv, settings
