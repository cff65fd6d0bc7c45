"""Fixtures of the fault-injection suite: one tiny real model artifact shared read-only by the
tests that do not tamper with artifacts, a per-test worker environment (unique topics,
consumer group and feed keys) with that model announced, the feeds of an undisturbed run of
the shared stream, and a durable broker of the test's own (Tansu on a local S3 server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.reliability_helpers import MSGS, USER_IDS, all_reflected, expected_sessions, final_feeds, sessions_of
from support.worker_harness import WorkerEnv, announce, build_artifact, produce, running_worker, wait_until

from streamrec.contracts.feed import Feed
from streamrec.local.services import EmbeddedServices, Service, start_broker, start_s3
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


@pytest.fixture(scope="session")
def undisturbed_feeds(
    services: EmbeddedServices, tmp_path_factory: pytest.TempPathFactory, shared_model: tuple[Path, ArtifactRef]
) -> Iterator[dict[str, Feed | None]]:
    """The reference: :data:`MSGS` through one worker that nothing disturbs."""
    tmp = tmp_path_factory.mktemp("undisturbed")
    registry, ref = shared_model
    env = WorkerEnv(services.broker, services.redis, f"t-undisturbed-{tmp.name}", tmp / "data", registry)
    env.create_topics()
    announce(env.broker, env.topics["models"], ref)
    produce(env.broker, env.topics["events"], MSGS)
    with running_worker(env, tmp / "worker.log") as w:
        w.wait_ready()
        wait_until(lambda: all_reflected(env, MSGS), 90, lambda: w.tail())
        assert sessions_of(env, USER_IDS) == expected_sessions(MSGS)
        yield final_feeds(env, USER_IDS)


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[Service]:
    """A broker of this test's own, on a local S3 server: a restart keeps its data."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    s3 = start_s3(workdir)
    try:
        broker = start_broker(workdir, s3=s3.address)
        try:
            yield broker
        finally:
            broker.stop()
    finally:
        s3.stop()
