"""Issue #20, item 2: the broker restarted mid-stream. The broker is Tansu on a local S3 server
(the durable broker of ``streamrec up --durable``), so a restart keeps topics, records and the
group's committed offsets, as Apache Kafka does. Events are produced before, during and after
the restart by one producer that retries; the worker is never restarted by the test."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from support.reliability_helpers import (
    MSGS,
    USER_IDS,
    all_reflected,
    expected_sessions,
    feed_differences,
    final_feeds,
    session_differences,
    sessions_of,
)
from support.worker_harness import PARTITIONS, WorkerEnv, WorkerProcess, announce, wait_until

from streamrec.contracts.feed import Feed
from streamrec.kafka import EventProducer
from streamrec.local.services import EmbeddedServices, Service
from streamrec.serving.registry import ArtifactRef

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

# Tansu 0.6.0 answers an idempotent producer's retry of a batch it lost in the restart as a
# duplicate: the batch is acknowledged and missing (a hole in the log; 2 runs of 5 here). Plain
# retries, one request in flight (in order), write it again; the worker drops the copies.
RETRY_WITHOUT_IDEMPOTENCE = {"enable_idempotence": False, "max_in_flight_requests_per_connection": 1}
RATE = 12  # events/s: the 320 events take ~27 s; a graceful restart takes ~5-10 s on 2 busy cores
DOWN_S = 2.0


def _send_paced(producer: EventProducer, per_s: float) -> threading.Thread:
    """Send :data:`MSGS` in order at about ``per_s`` from a thread; the producer buffers and
    retries what cannot be delivered while the broker is down."""

    def run() -> None:
        for i, (user, ev) in enumerate(MSGS):
            producer.send(user, ev)
            time.sleep(max(0.0, (i + 1) / per_s - (time.monotonic() - start)))

    start = time.monotonic()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _events_in_log(env: WorkerEnv, idle_s: float = 10.0) -> set[str]:
    """The event ids the events topic holds after the run (what the broker kept), read from the
    beginning until ``idle_s`` passes without a record (a fixed read window missed records on
    busy cores)."""
    consumer = KafkaConsumer(
        bootstrap_servers=env.broker, enable_auto_commit=False, consumer_timeout_ms=int(idle_s * 1e3)
    )
    try:
        tps = [TopicPartition(env.topics["events"], p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return {json.loads(r.value)["event_id"] for r in consumer}
    finally:
        consumer.close()


def test_broker_restart_mid_stream_is_resumed_by_the_worker_with_every_event_once(
    durable_broker: Service,
    services: EmbeddedServices,
    unique_prefix: str,
    tmp_path: Path,
    shared_model: tuple[Path, ArtifactRef],
    undisturbed_feeds: dict[str, Feed | None],
) -> None:
    """Pass: 320 events (40 users x 8) are produced at ~12/s; after a third of them were
    processed the broker is stopped (SIGTERM, waited for), stays down 2 s while the producer
    keeps sending, and is started again on the same port and storage. The producer reports
    every event delivered, none failed; the same worker process (never restarted by the test)
    then reflects every event the log holds: every session holds each of them exactly once, in
    order, and every final feed equals the undisturbed run's. Tansu 0.6.0 now and then loses an
    acknowledged record in the restart (docs/reliability.md): such events are printed, and the
    users they belong to are compared on their sessions only (their feeds cannot match)."""
    registry, ref = shared_model
    env = WorkerEnv(durable_broker.address, services.redis, unique_prefix, tmp_path / "data", registry)
    env.create_topics()
    announce(env.broker, env.topics["models"], ref)
    w = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        w.wait_ready()
        producer = EventProducer(env.broker, env.topics["events"], **RETRY_WITHOUT_IDEMPOTENCE)
        sender = _send_paced(producer, RATE)
        wait_until(lambda: w.metric("streamrec_events_total") >= len(MSGS) // 3, 60, lambda: w.tail())
        processed_before, sent_before = w.metric("streamrec_events_total"), producer.report.sent
        durable_broker.restart(down_s=DOWN_S)
        restarted_at, sent_while_down = time.monotonic(), producer.report.sent - sent_before
        sender.join(90)
        assert sent_while_down > 0 and producer.report.sent - sent_before - sent_while_down > 0, "not mid-stream"
        report = producer.flush(90)
        assert (report.delivered, report.failed) == (len(MSGS), []), report
        producer._producer.close(timeout=5)
        kept = _events_in_log(env)
        msgs = [m for m in MSGS if m[1]["event_id"] in kept]
        lost_by_broker = sorted(m[1]["event_id"] for m in MSGS if m[1]["event_id"] not in kept)
        wait_until(
            lambda: all_reflected(env, msgs),
            120,
            lambda: (
                f"events not reflected 120 s after the broker restart (worker: events "
                f"{w.metric('streamrec_events_total'):.0f}, lag {w.metric('streamrec_consumer_lag'):.0f}, held back "
                f"{w.metric('streamrec_held_back_total'):.0f}; {len(lost_by_broker)} lost by the broker):\n{w.tail()}"
            ),
        )
        w.check_alive()
        note = (
            f"{processed_before:.0f} of {len(MSGS)} processed before the restart, {sent_while_down} sent while the "
            f"broker was down, all reflected {time.monotonic() - restarted_at:.1f} s after it was back, "
            f"{len(lost_by_broker)} acknowledged events absent from the log {lost_by_broker}; worker log:\n{w.tail()}"
        )
        print(note.split(";")[0])
        hit = {u for u, ev in MSGS if ev["event_id"] in lost_by_broker}
        sessions = session_differences(sessions_of(env, USER_IDS), expected_sessions(msgs))
        feeds = feed_differences(
            {u: f for u, f in final_feeds(env, USER_IDS).items() if u not in hit},
            {u: f for u, f in undisturbed_feeds.items() if u not in hit},
        )
        assert (sessions, feeds) == ([], []), (
            f"{note}\nsessions:\n" + "\n".join(sessions) + "\nfeeds:\n" + "\n".join(feeds)
        )
    finally:
        w.stop(signal.SIGKILL)
