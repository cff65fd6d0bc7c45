"""The online trainer against the real broker: it consumes training batches, promotes a
gated candidate, exports it to the registry, announces it on the models topic and commits its
offsets; restarted, it resumes from the promoted version instead of learning from zero."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from support.tiny_model import chain_examples, tiny_trained

from streamrec.config import Settings
from streamrec.encoder.artifact import save_model_dir
from streamrec.export.exporter import export_model
from streamrec.export.registry import open_registry
from streamrec.kafka import ensure_topics, make_producer, read_topic, topic_plan
from streamrec.services import EmbeddedServices, free_port
from streamrec.trainer_process import TrainerProcess
from streamrec.training_batch import encode_batch

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(services: EmbeddedServices, unique_prefix: str, tmp_path: Path) -> tuple[Settings, Path, str]:
    settings = Settings(
        broker=services.broker,
        redis=services.redis,
        data_dir=tmp_path,
        k=10,
        topics={n: f"{unique_prefix}.{n}" for n in ("events", "dlq", "items", "training", "models")},
        trainer={
            "group_id": f"{unique_prefix}-trainer",
            "interval_s": 1.0,
            "min_new_examples": 64,
            "holdout_size": 100,
            "update_batch": 64,
            "lr": 3e-3,
            "tolerance": 0.0,
            "web_port": free_port(),
        },
        encoder={"n_negatives": 16},
    )
    ensure_topics(settings.broker, topic_plan(settings))
    trained = tiny_trained()
    init = save_model_dir(tmp_path / "init-model", trained)
    registry = open_registry("", tmp_path)
    first = export_model(
        trained.session_tower, trained.item_ids, trained.item_matrix(), registry, k=10, session_length=8
    )
    producer = make_producer(settings.broker)
    for b in range(10):
        producer.send(settings.topics.training, value=encode_batch(first.ref.version, chain_examples(100, seed=b)))
    producer.flush()
    producer.close()
    return settings, init, first.ref.version


def _run_until_promoted(proc: TrainerProcess, timeout_s: float = 90.0) -> None:
    thread = threading.Thread(target=proc.run)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while proc.metrics.promotions._value.get() < 1 and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.2)
    proc.stop.set()
    thread.join(30)


def test_trainer_promotes_announces_and_resumes(setup: tuple[Settings, Path, str]) -> None:
    settings, init, first_version = setup
    proc = TrainerProcess(settings, init, threading.Event())
    assert proc.served.version == first_version
    _run_until_promoted(proc)
    assert proc.metrics.promotions._value.get() >= 1, "no candidate was promoted"
    new_version = proc.served.version
    assert new_version != first_version

    announced = [json.loads(r.value) for r in read_topic(settings.broker, settings.topics.models, min_count=1)]
    assert announced[-1]["version"] == new_version and announced[-1]["parent"] == first_version
    assert (settings.data_dir / "trainer" / "models" / new_version).is_dir()
    assert [r.version for r in open_registry("", settings.data_dir).list()][-1] == new_version
    assert proc.metrics.freshness._sum.get() > 0  # freshness observed for the learned examples

    restarted = TrainerProcess(settings, None, threading.Event())  # no --init-model needed any more
    assert restarted.served.version == new_version
    consumer = restarted.consumer()
    from kafka import TopicPartition

    committed = consumer.committed(TopicPartition(settings.topics.training, 0))
    consumer.close()
    assert committed is not None and committed > 0  # offsets committed at promotion
