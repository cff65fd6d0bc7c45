"""Kafka plumbing shared by every process: security options, topic creation, the producer.

kafka-python is used for admin and producing from plain (non-asyncio) code: the replay tool,
tests and benchmarks. The stream worker uses faust/aiokafka with the same security settings.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from streamrec.config import KafkaSecurity, Settings
from streamrec.contracts import compact_json
from streamrec.errors import ServiceUnavailable, UserError

log = logging.getLogger(__name__)


def security_kwargs(sec: KafkaSecurity) -> dict[str, Any]:
    """kafka-python connection options for the configured security protocol."""
    if sec.protocol == "SASL_PLAINTEXT":
        # Refused on purpose: the password would cross the network in the clear.
        raise UserError("SASL_PLAINTEXT sends the password in clear text; use SASL_SSL")
    out: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.protocol in ("SSL", "SASL_SSL"):
        ctx = ssl.create_default_context(cafile=str(sec.ca_file) if sec.ca_file else None)
        out["ssl_context"] = ctx
    if sec.protocol == "SASL_SSL":
        out |= {
            "sasl_mechanism": sec.sasl_mechanism,
            "sasl_plain_username": sec.sasl_username,
            "sasl_plain_password": sec.sasl_password.get_secret_value(),
        }
    return out


def topic_plan(settings: Settings) -> dict[str, tuple[int, bool]]:
    """Every topic streamrec uses: name -> (partitions, compacted). Items, models and erasures
    are compacted (latest value per key is the state); events/DLQ/training are plain logs.
    Erasures are partitioned like the events: a user's erasure reaches the worker that owns the
    user's session (docs/privacy.md)."""
    t = settings.topics
    return {
        t.events: (settings.partitions, False),
        t.dlq: (1, False),
        t.items: (1, True),
        t.training: (1, False),
        t.models: (1, True),
        t.erasures: (settings.partitions, True),
    }


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, tuple[int, bool]],
    replication: int = 1,
    security: KafkaSecurity | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Create missing topics. Existing ones are left alone (their partition count is not
    changed: that would move users between partitions and break per-user ordering)."""
    admin = _connect(
        lambda: KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="streamrec-admin", **security_kwargs(security or KafkaSecurity())
        ),
        bootstrap,
        timeout_s,
    )
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(name, partitions, replication, topic_configs={"cleanup.policy": "compact"} if compacted else {})
            for name, (partitions, compacted) in topics.items()
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
        _wait_topics(admin, set(topics), timeout_s)
    finally:
        admin.close()


def partitions_of(bootstrap: str, topics: Sequence[str], security: KafkaSecurity | None = None) -> dict[str, int]:
    """The partition count of each topic (0: it does not exist), from the cluster's metadata."""
    from kafka import KafkaConsumer

    sec = security_kwargs(security or KafkaSecurity())
    consumer = _connect(lambda: KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **sec), bootstrap, 30.0)
    try:
        return {t: len(consumer.partitions_for_topic(t) or ()) for t in topics}
    finally:
        consumer.close()


def _wait_topics(admin: KafkaAdminClient, names: set[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not names <= set(admin.list_topics()):
        if time.monotonic() > deadline:
            raise KafkaError(f"topics not visible after {timeout_s:.0f}s: {sorted(names - set(admin.list_topics()))}")
        time.sleep(0.2)


def _connect(factory: Any, bootstrap: str, timeout_s: float) -> Any:
    """Build a client; a broker that never answers becomes one line for the user (kafka-python
    itself retries the bootstrap for ~30 s before giving up)."""
    try:
        return factory()
    except KafkaTimeoutError:
        raise ServiceUnavailable(
            f"no Kafka broker answers at {bootstrap}: start one (streamrec up --services-only) "
            "or point --broker / STREAMREC_BROKER at a running one"
        ) from None


def make_producer(bootstrap: str, security: KafkaSecurity | None = None, **overrides: Any) -> KafkaProducer:
    """A producer with the safe settings spelled out: acks=all and idempotence so a retried
    send neither loses nor duplicates; a small linger so replay batches (~5 ms adds ~5x
    throughput at 10k events/s). Keys are user ids, so a user's events stay on one partition
    in order and the worker never repartitions."""
    opts: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": "streamrec-producer",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 120_000,
        "key_serializer": lambda k: k.encode() if isinstance(k, str) else k,
        # None stays None: a tombstone (withdraws an item on the compacted catalogue topic), not "null"
        "value_serializer": lambda v: v if v is None or isinstance(v, bytes) else compact_json.dumps(v),
    }
    opts |= security_kwargs(security or KafkaSecurity())
    opts |= overrides
    return _connect(lambda: KafkaProducer(**opts), bootstrap, 30.0)


def publish(settings: Settings, topic: str, messages: Sequence[tuple[str, bytes | None]]) -> None:
    """Create missing topics, send ``(key, value)`` messages to ``topic`` and wait until the broker
    acked each (a failure raises: one line and exit 1 in a command, streamrec.failures)."""
    ensure_topics(settings.broker, topic_plan(settings), settings.replication, settings.kafka_security)
    with contextlib.closing(make_producer(settings.broker, settings.kafka_security)) as producer:
        sent = [producer.send(topic, key=key, value=value) for key, value in messages]
        producer.flush()
        for future in sent:
            future.get(timeout=30)


@dataclass
class DeliveryReport:
    """What happened to each send; failures are kept (with the reason), never hidden."""

    sent: int = 0
    delivered: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)

    def on_success(self, _meta: Any) -> None:
        self.delivered += 1

    def on_error(self, key: str, exc: BaseException) -> None:
        self.failed.append((key, f"{type(exc).__name__}: {exc}"))


class EventProducer:
    """Publishes events keyed by user id and accounts for every delivery."""

    def __init__(self, bootstrap: str, topic: str, security: KafkaSecurity | None = None, **overrides: Any) -> None:
        """``overrides`` are kafka-python producer options (e.g. ``delivery_timeout_ms``: how long
        a send may be retried before it is reported failed; 120 s by default)."""
        self.topic = topic
        self.report = DeliveryReport()
        self._producer = make_producer(bootstrap, security, **overrides)

    def send(self, user_id: str, value: bytes | dict[str, Any]) -> None:
        fut = self._producer.send(self.topic, key=user_id, value=value)
        self.report.sent += 1
        fut.add_callback(self.report.on_success)
        fut.add_errback(lambda exc, k=user_id: self.report.on_error(k, exc))

    def flush(self, timeout_s: float | None = None) -> DeliveryReport:
        self._producer.flush(timeout=timeout_s)
        return self.report

    def close(self) -> DeliveryReport:
        self.flush()
        self._producer.close()
        return self.report

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Pacer:
    """Sleeps just enough to hold an average rate; no sleeping at rate 0."""

    def __init__(self, rate: float) -> None:
        self.rate, self.start, self.sent = rate, time.monotonic(), 0

    def tick(self) -> None:
        self.sent += 1
        if self.rate > 0:
            ahead = self.sent / self.rate - (time.monotonic() - self.start)
            if ahead > 0.002:
                time.sleep(ahead)


def read_topic(
    bootstrap: str,
    topic: str,
    min_count: int | None = None,
    timeout_s: float = 10.0,
    security: KafkaSecurity | None = None,
) -> list[Any]:
    """Every record of a topic from the beginning, without a consumer group (no join wait,
    no committed offsets): for inspecting the DLQ, tests and the demo summary. Stops at
    ``min_count`` records or after ``timeout_s``; a topic that does not exist reads empty."""
    from streamrec.follow import FollowerThread

    follower = FollowerThread(bootstrap, topic, **security_kwargs(security or KafkaSecurity()))
    try:
        return follower.read(min_count, timeout_s)
    finally:
        follower.close()


def read_to_end(
    bootstrap: str, topic: str, security: KafkaSecurity | None = None, idle_timeout_s: float = 60.0
) -> list[Any]:
    """Every record of ``topic`` from its first offset up to its end when the call starts: a
    bounded read (records produced meanwhile wait for the next one), without a consumer group, so
    it commits nothing and joins no group. The end offsets at the start must be reached; past them
    a partition is read on while its records are stamped before the start and until a fetch comes
    back empty (Tansu reports the first offset of its newest batch as the end, not the offset after
    it). A topic that does not exist reads empty; a broker that stops delivering before the end
    offsets for ``idle_timeout_s`` is :class:`ServiceUnavailable`."""
    from kafka import KafkaConsumer, TopicPartition

    started_ms = time.time() * 1000
    consumer = _connect(
        lambda: KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            **security_kwargs(security or KafkaSecurity()),
        ),
        bootstrap,
        30.0,
    )
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        left = set(tps)
        out: list[Any] = []
        last = time.monotonic()
        while left:
            batch = consumer.poll(timeout_ms=500, max_records=10_000)
            for tp, records in batch.items():
                newer = next((k for k, r in enumerate(records) if r.timestamp > started_ms), None)
                out.extend(records[:newer])
                if newer is not None:  # produced after the start: left for the next read
                    left.discard(tp)
                    consumer.pause(tp)
            reached = {tp for tp in left if consumer.position(tp) >= end[tp]}
            if batch:
                last = time.monotonic()
            elif reached == left:
                break  # every partition past its end offset and nothing more to fetch
            elif time.monotonic() - last > idle_timeout_s:
                behind = sum(end[tp] - consumer.position(tp) for tp in left - reached)
                raise ServiceUnavailable(
                    f"reading {topic} from {bootstrap}: no record for {idle_timeout_s:.0f}s with {behind} still to read"
                )
        return out
    finally:
        consumer.close()
