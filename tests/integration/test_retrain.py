"""``streamrec retrain`` against the real broker and a Redis registry: it reads the events topic to
its end, retrains offline, beats the served version on the held-back newest events, publishes
and announces; a retrain whose model is worse (one epoch at a learning rate that leaves it
untrained) is rejected with exit 3 and announces nothing."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest
import torch

from streamrec.cli import main
from streamrec.config import Settings
from streamrec.contracts.announcement import send_announcement
from streamrec.contracts.erasure import erasure_records
from streamrec.contracts.events import Event
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.model import ModelConfig, Recommender
from streamrec.export.exporter import export_model
from streamrec.kafka import EventProducer, ensure_topics, make_producer, publish, read_topic, topic_plan
from streamrec.local.services import EmbeddedServices
from streamrec.sample import generate_sample
from streamrec.serving.artifact import MODEL_DIR_TAR
from streamrec.serving.registry import open_registry
from streamrec.serving.runner import Runner
from streamrec.trainer.retrain import topic_events

pytestmark = pytest.mark.integration
TINY = {
    "STREAMREC_SESSION_LENGTH": "8",
    "STREAMREC_K": "10",
    "STREAMREC_DEVICE": "cpu",
    "STREAMREC_ENCODER__D_MODEL": "16",
    "STREAMREC_ENCODER__N_LAYERS": "1",
    "STREAMREC_ENCODER__TEXT_MODEL": "none",
    "STREAMREC_ENCODER__EPOCHS": "6",
    "STREAMREC_ENCODER__BATCH_SIZE": "64",
    "STREAMREC_ENCODER__LR": "0.01",
    "STREAMREC_RETRAIN__HOLDOUT_EVENTS": "300",
    "STREAMREC_REGISTRY__INT8": "false",
}


def _served_at_random(item_ids: list[str], registry_url: str, data_dir: Path) -> dict:
    """The version being served: an untrained model over the sample's items, exported and announced."""
    torch.manual_seed(0)
    cfg = ModelConfig(d=16, n_layers=1, n_heads=2, session_length=8, dropout=0.0, n_items=len(item_ids))
    trained = TrainedModel(Recommender(cfg), list(item_ids), {})
    registry = open_registry(registry_url, data_dir)
    ref = export_model(trained.session_tower, trained.item_ids, trained.item_matrix(), registry, k=10, session_length=8)
    return ref.ref.announcement()


def test_retrain_announces_a_better_model_and_rejects_a_worse_one(
    services: EmbeddedServices,
    unique_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry_url = services.redis.rsplit("/", 1)[0] + "/9"  # a database of its own: the registry keys are fixed
    env = TINY | {
        "STREAMREC_BROKER": services.broker,
        "STREAMREC_REGISTRY__URL": registry_url,
        "STREAMREC_DATA_DIR": str(tmp_path / "retrain"),
        **{f"STREAMREC_TOPICS__{t.upper()}": f"{unique_prefix}.{t}" for t in ("events", "dlq", "items", "training")},
        "STREAMREC_TOPICS__MODELS": f"{unique_prefix}.models",
        "STREAMREC_TOPICS__ERASURES": f"{unique_prefix}.erasures",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # the environment above
    ensure_topics(settings.broker, topic_plan(settings))
    catalogue, log = generate_sample(seed=0, n_users=80, n_items=120, events_per_user=(15, 30))
    with EventProducer(settings.broker, settings.topics.events) as producer:
        for ev in log.events:
            producer.send(ev.user_id, ev.to_json())
        producer.send("bad", b"not json")  # refused like a worker refuses it, not trained on
    first = _served_at_random(catalogue.item_ids, registry_url, tmp_path / "served")
    with contextlib.closing(make_producer(settings.broker)) as producer:
        send_announcement(producer, settings.topics.models, first)

    assert main(["retrain", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert f"read {len(log)} events from topic {settings.topics.events} (1 invalid skipped)" in out
    announced = [json.loads(r.value) for r in read_topic(settings.broker, settings.topics.models, min_count=2)]
    assert len(announced) == 2 and announced[-1]["parent"] == first["version"]
    version = announced[-1]["version"]
    assert f"announced {version}" in out
    registry = open_registry(registry_url, tmp_path / "reader")
    assert registry.list()[-1].version == version
    artifact = registry.fetch(version, announced[-1]["sha256"])  # verified against the announced digest
    assert (artifact / MODEL_DIR_TAR).is_file(), "the trainer can continue from it"
    runner = Runner.load(artifact, "cpu")
    (ids, _scores), _ = runner.recommend([[log.events[0].item_id], ["nope"]], [["click"], ["click"]], k=5)
    assert len(ids) == 5

    # sabotaged: one epoch at a learning rate that leaves the model as it was initialised
    assert main(["retrain", "--quiet", "--encoder-epochs", "1", "--encoder-lr", "1e-9"]) == 3
    out = capsys.readouterr().out
    assert "rejected, the served version stays" in out and version in out
    assert len(read_topic(settings.broker, settings.topics.models, timeout_s=3)) == 2, "nothing announced"
    assert registry.list()[-1].version == version, "nothing published"


def test_retrain_leaves_out_erased_users_events_published_before_the_erasure(
    services: EmbeddedServices, unique_prefix: str
) -> None:
    topics = ("events", "dlq", "items", "training", "models", "erasures")
    settings = Settings(broker=services.broker, topics={t: f"{unique_prefix}.{t}" for t in topics})
    ensure_topics(settings.broker, topic_plan(settings))
    with EventProducer(settings.broker, settings.topics.events) as producer:
        for user in ("gone", "kept"):
            for i in range(3):
                producer.send(user, Event(f"{user}{i}", user, f"i{i}", "click", 1000.0 + i).to_json())
    publish(settings, settings.topics.erasures, erasure_records(["gone"], time.time()))
    time.sleep(0.01)  # the next event is published after the erasure (Kafka timestamps, ms)
    with EventProducer(settings.broker, settings.topics.events) as producer:
        producer.send("gone", Event("gone-later", "gone", "i9", "click", 1003.0).to_json())
    kept = {ev.event_id for ev in topic_events(settings).events}
    assert kept == {"kept0", "kept1", "kept2", "gone-later"}
