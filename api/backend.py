"""What the API talks to: Redis (feeds, through :mod:`streamrec.feed_store`), one Kafka producer
(events and catalogue records), the model registry, and the served version (the latest
announcement on ``streamrec.models``, followed like every worker follows it)."""

from __future__ import annotations

import threading
from typing import Any

from streamrec.api.stats import StreamStats
from streamrec.config import Settings
from streamrec.feed_store import redis_client, redis_client_async
from streamrec.kafka import make_producer, security_kwargs


class Backend:
    """Connections opened lazily and shared by the request threads; a broker that is down
    fails the requests that need it (503), not the API's start."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis = redis_client(settings.redis, settings.redis_tls)  # readiness and anything run in a thread
        self.aredis = redis_client_async(settings.redis, settings.redis_tls)  # feed reads, on the event loop
        self._producer: Any = None
        self.tails: Any = None  # streamrec.api.tails.Tails, once started
        self.stats = StreamStats(settings)
        self._lock = threading.Lock()

    def producer(self) -> Any:
        with self._lock:
            if self._producer is None:
                self._producer = make_producer(self.settings.broker, self.settings.kafka_security)
            return self._producer

    def publish(self, topic: str, records: list[tuple[str, bytes | None]]) -> None:
        """Send ``(key, value)`` records and wait until the broker acked every one (raises otherwise)."""
        producer = self.producer()
        futures = [producer.send(topic, key=key, value=value) for key, value in records]
        producer.flush(timeout=self.settings.api.publish_timeout_s)
        for f in futures:
            f.get(timeout=self.settings.api.publish_timeout_s)

    def registry(self) -> Any:
        from streamrec.serving.registry import open_registry

        return open_registry(self.settings.registry.url, self.settings.data_dir, self.settings.redis_tls)

    def start(self) -> None:
        """Follow the models, items and dead-letter topics (threads that retry while the broker is down)."""
        from streamrec.api.tails import Tails

        t = self.settings.topics
        sec = security_kwargs(self.settings.kafka_security)
        self.tails = Tails(self.settings.broker, t.models, t.items, t.dlq, **sec)

    def served(self) -> tuple[dict[str, Any] | None, bool]:
        """The latest announcement read so far (the version workers serve, or None), and whether
        the follower has read everything the topic held when it started."""
        if self.tails is None:
            return None, False
        caught_up = self.tails.models.refresh()
        return self.tails.served, caught_up

    def ready(self) -> list[str]:
        """Reasons the API cannot serve (for /readyz): Redis and the broker, checked now."""
        reasons = []
        try:
            self.redis.ping()
        except Exception as exc:  # any failure means not ready; the reason names it
            reasons.append(f"redis: {type(exc).__name__}: {exc}")
        producer = self._producer
        if producer is not None and not producer.bootstrap_connected():
            reasons.append("kafka: the producer lost its broker connection")
        return reasons

    async def aclose(self) -> None:
        await self.aredis.aclose()

    def close(self) -> None:
        if self.tails is not None:
            self.tails.close()
        self.stats.close()
        if self._producer is not None:
            self._producer.close(timeout=5)
        self.redis.close()
