"""Issue #9, item 3: the broker stopped and restarted. The embedded Tansu keeps data in memory
only (docs/architecture.md, known facts): a restarted Tansu comes back empty (no topics, no committed
offsets, offsets start again at 0), which a real Kafka never does. So this test checks what can
be checked honestly against it: while the broker is down the producer API reports every failed
delivery (none hidden) and the worker's readiness drops and it stays up; when a broker with the
same topics comes back on the same address the worker reconnects and processes new events
without manual action. Resuming from committed offsets across a restart of a durable broker
(Tansu on a local S3 server) is test_broker_restart.py."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from support.reliability_helpers import all_reflected, stream
from support.worker_harness import PARTITIONS, WorkerEnv, WorkerProcess, announce, produce, wait_until

from streamrec.kafka import EventProducer, ensure_topics
from streamrec.local.services import EmbeddedServices, start_broker
from streamrec.serving.registry import ArtifactRef

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def test_broker_down_reports_failed_deliveries_and_worker_resumes_when_it_is_back(
    services: EmbeddedServices, unique_prefix: str, tmp_path: Path, shared_model: tuple[Path, ArtifactRef]
) -> None:
    """Pass: with the worker's own Tansu stopped, (a) an EventProducer (acks=all, idempotent;
    delivery timeout 5 s) that delivered 1 event before reports the 5 events sent during the
    outage as failed with their keys and reasons, delivered stays 1; (b) the worker's /readyz
    goes 503 naming Kafka and the process stays alive; (c) after Tansu restarts on the same
    port (empty) and the same topics are created, readiness is 200 again without a restart.
    Processing after a restart of a durable broker: test_broker_restart.py."""
    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    broker = start_broker(broker_dir)
    registry, ref = shared_model
    env = WorkerEnv(broker.address, services.redis, unique_prefix, tmp_path / "data", registry)
    changelog = {f"{env.prefix}-sessions-changelog": (PARTITIONS, True)}

    def create_topics() -> None:
        env.create_topics()
        ensure_topics(env.broker, changelog)
        announce(env.broker, env.topics["models"], ref)

    create_topics()
    before = stream(10, 2, tag="a")
    produce(env.broker, env.topics["events"], before)
    w = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        w.wait_ready()
        wait_until(lambda: all_reflected(env, before), 60, lambda: w.tail())
        producer = EventProducer(
            env.broker, env.topics["events"], delivery_timeout_ms=5000, request_timeout_ms=2000, max_block_ms=5000
        )
        producer.send("p0", {"event_id": "p0", "user_id": "p0", "item_id": "item-1", "ts": time.time()})
        assert producer.flush(10).delivered == 1

        broker.stop()
        for i in range(1, 6):
            producer.send(f"p{i}", {"event_id": f"p{i}", "user_id": f"p{i}", "item_id": "item-1", "ts": time.time()})
        try:
            producer.flush(20)
        except Exception as exc:  # a flush timeout is also a report, not a silent loss
            pytest.fail(f"flush did not return within the delivery timeout: {exc!r}")
        report = producer.report
        assert (report.sent, report.delivered) == (6, 1)
        assert sorted(k for k, _ in report.failed) == [f"p{i}" for i in range(1, 6)], report.failed
        assert all(reason for _, reason in report.failed)
        producer._producer.close(timeout=1)

        wait_until(lambda: w.get("/readyz")[0] == 503, 15, "readiness did not drop while the broker was down")
        assert "kafka" in w.get("/readyz")[1].lower()
        time.sleep(5)
        w.check_alive()

        broker = start_broker(broker_dir, port=broker.port)  # memory-only: back empty
        create_topics()
        wait_until(lambda: w.get("/readyz")[0] == 200, 30, "readiness did not come back with the broker")
        w.check_alive()
    finally:
        w.stop(signal.SIGKILL)
        broker.stop()
