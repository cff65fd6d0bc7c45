"""Live figures of the stream for the console, read from the broker itself: the append rate
of the events topic (events/s, between two reads) and the workers' consumer lag (end offsets
minus the offsets the worker group committed)."""

from __future__ import annotations

import threading
import time
from typing import Any

from streamrec.config import Settings
from streamrec.kafka import security_kwargs


class StreamStats:
    """Opens its Kafka clients on first use; one read at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._consumer: Any = None
        self._admin: Any = None
        self._last: tuple[float, int] | None = None

    def _clients(self) -> tuple[Any, Any]:
        from kafka import KafkaAdminClient, KafkaConsumer

        if self._consumer is None:
            sec = security_kwargs(self.settings.kafka_security)
            self._consumer = KafkaConsumer(bootstrap_servers=self.settings.broker, group_id=None, **sec)
            self._admin = KafkaAdminClient(bootstrap_servers=self.settings.broker, **sec)
        return self._consumer, self._admin

    def read(self) -> dict[str, Any]:
        from kafka import TopicPartition

        with self._lock:
            consumer, admin = self._clients()
            topic = self.settings.topics.events
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            end = consumer.end_offsets(tps) if tps else {}
            group = self.settings.worker.app_id
            committed = admin.list_group_offsets({group: tps})[group] if tps else {}
            now, total = time.monotonic(), sum(end.values())
            rate = None
            if self._last is not None and now > self._last[0]:
                rate = round((total - self._last[1]) / (now - self._last[0]), 1)
            self._last = (now, total)
        # a partition the group has not committed yet (offset -1) is behind by all it holds
        lag = sum(max(0, off - max(0, committed[tp].offset)) if tp in committed else off for tp, off in end.items())
        return {"events_total": total, "events_per_s": rate, "consumer_lag": lag, "group": self.settings.worker.app_id}

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._admin.close()
