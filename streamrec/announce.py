"""Announcing a model version on ``streamrec.models``: the one way workers learn what to serve.

The topic is compacted and every announcement uses the same key, so the latest value is the
version every (re)starting worker converges on; announcing an older version is a rollback.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer

from streamrec.config import Settings
from streamrec.kafka import make_producer

ANNOUNCEMENT_KEY = "model"


def announce(settings: Settings, announcement: dict[str, Any], producer: KafkaProducer | None = None) -> None:
    """Publish ``announcement`` (``ArtifactRef.announcement()``) and wait until it is acked."""
    own = producer is None
    producer = producer or make_producer(settings.broker, settings.kafka_security)
    try:
        producer.send(settings.topics.models, key=ANNOUNCEMENT_KEY, value=announcement).get(timeout=30)
    finally:
        if own:
            producer.close()
