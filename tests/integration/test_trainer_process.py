"""The online trainer against the real broker: it consumes training batches, promotes a
gated candidate, exports it to the registry, announces it on the models topic and commits its
offsets; restarted, it resumes from the promoted version instead of learning from zero. An item
published on the catalogue topic after the offline model is in the promoted version."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from support.tiny_model import chain_examples, tiny_trained

from streamrec.config import Settings
from streamrec.contracts.announcement import send_announcement
from streamrec.contracts.training_batch import encode_batch
from streamrec.encoder.artifact import save_model_dir
from streamrec.export.exporter import export_model, export_model_dir
from streamrec.kafka import ensure_topics, make_producer, read_topic, topic_plan
from streamrec.local.services import EmbeddedServices
from streamrec.net import free_port
from streamrec.serving.registry import LocalRegistry, open_registry
from streamrec.trainer.offsets import training_consumer
from streamrec.trainer.process import TrainerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def setup(
    request: pytest.FixtureRequest, services: EmbeddedServices, unique_prefix: str, tmp_path: Path
) -> tuple[Settings, Path, str]:
    """Settings, the initial model dir and its registry version; ``indirect`` param: text_dim."""
    settings = Settings(
        broker=services.broker,
        redis=services.redis,
        data_dir=tmp_path,
        k=10,
        topics={n: f"{unique_prefix}.{n}" for n in ("events", "dlq", "items", "training", "models", "erasures")},
        trainer={
            "group_id": f"{unique_prefix}-trainer",
            "interval_s": 1.0,
            "min_new_examples": 64,
            "holdout_size": 100,
            "update_batch": 64,
            "lr": 3e-3,
            "tolerance": 0.0,
            "canary_share": 0,  # straight to everyone: these examples carry no feeds to judge (test_canary.py)
            "web_port": free_port(),
        },
        encoder={"n_negatives": 16},
    )
    ensure_topics(settings.broker, topic_plan(settings))
    trained = tiny_trained(text_dim=getattr(request, "param", 0))
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
    consumer = training_consumer(restarted.s)
    from kafka import TopicPartition

    committed = consumer.committed(TopicPartition(settings.topics.training, 0))
    consumer.close()
    # committed at promotion, never past an example the promoted version has not trained on: the
    # last record (100 examples) is the held-back window
    assert committed is not None and 0 <= committed <= 9


def _text_encoder(texts: list[str]) -> np.ndarray:
    """A cheap, deterministic stand-in for the text model (the test is about the broker path)."""
    return np.stack([np.random.default_rng(len(t)).standard_normal(8).astype(np.float32) for t in texts])


@pytest.mark.parametrize("setup", [8], indirect=True)
def test_new_catalogue_item_ships_with_the_promoted_version(setup: tuple[Settings, Path, str]) -> None:
    settings, init, _first_version = setup
    producer = make_producer(settings.broker)
    item = {"item_id": "brand-new", "title": "Moon dust", "text": "regolith", "category": "astronomy"}
    producer.send(settings.topics.items, key=b"brand-new", value=json.dumps(item).encode())
    producer.flush()
    producer.close()

    proc = TrainerProcess(settings, init, threading.Event(), text_encoder=_text_encoder)
    _run_until_promoted(proc)
    assert proc.metrics.promotions._value.get() >= 1, "no candidate was promoted"
    assert proc.metrics.new_items._value.get() == 1 and proc.metrics.items._value.get() == 41

    registry = open_registry("", settings.data_dir)
    ref = registry.list()[-1]
    assert ref.version == proc.served.version and ref.metrics["new_items"] == 1
    ids = json.loads((registry.fetch(ref.version) / "item_ids.json").read_text())
    assert ids[-1] == "brand-new" and len(ids) == 41
    matrix = np.load(registry.fetch(ref.version) / "items.npy")
    assert matrix.shape[0] == 41 and np.isfinite(matrix).all()


def test_a_running_trainer_continues_from_a_retrained_version(setup: tuple[Settings, Path, str]) -> None:
    """A version announced by a retrain (carrying its model directory) becomes the running
    trainer's base: it keeps the examples it holds and its next promotion descends from it."""
    settings, init, _first_version = setup
    retrained = save_model_dir(settings.data_dir / "retrained", tiny_trained(seed=5))
    # exported before the trainer runs (torch's ONNX export is not thread-safe), published after it started
    scratch = LocalRegistry(settings.data_dir / "scratch")
    exported = scratch.fetch(export_model_dir(retrained, scratch, k=10, ship_model_dir=True).ref.version)
    proc = TrainerProcess(settings, init, threading.Event())
    thread = threading.Thread(target=proc.run)
    thread.start()
    try:
        deadline = time.monotonic() + 120  # each wait; generous: a loaded 2-core box exports slowly
        while len(proc.learner.buffer) + len(proc.learner.holdout) < 1000 and time.monotonic() < deadline:
            time.sleep(0.2)
        held = len(proc.learner.buffer) + len(proc.learner.holdout)
        assert held == 1000, "the trainer did not read the training topic"
        ref = open_registry("", settings.data_dir).publish(exported)
        with contextlib.closing(make_producer(settings.broker)) as producer:
            send_announcement(producer, settings.topics.models, ref.announcement())
        deadline = time.monotonic() + 120
        while proc.metrics.adoptions._value.get() < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.metrics.adoptions._value.get() == 1, "the announced retrain was not adopted"
        assert len(proc.learner.buffer) + len(proc.learner.holdout) == held, "the examples were kept"
        assert (settings.data_dir / "trainer" / "models" / ref.version).is_dir(), "a restart resumes from it"
        registry = open_registry("", settings.data_dir)
        deadline = time.monotonic() + 120
        while not any(r.parent == ref.version for r in registry.list()) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.stop.set()
        thread.join(30)
    assert any(r.parent == ref.version for r in registry.list()), "the next promotion descends from it"
