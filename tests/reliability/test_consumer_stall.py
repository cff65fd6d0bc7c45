"""Issue #20, item 4: readiness that tells the truth. Two freezes of a running worker's consumer,
each with events waiting, and ``/readyz`` must drop naming the cause, then come back to 200 on its
own, and every event must still reach its user's feed:

* its broker gets SIGSTOP: the process answers nothing, but the kernel still accepts TCP
  connections (the old TCP check said "reachable" and the consumer crawled on for 30-60 s on
  what it had fetched); the probe's ApiVersions round trip must name Kafka;
* its Redis pauses writes (``CLIENT PAUSE ... WRITE``, what Redis does during a failover): PING
  still answers, so the Redis probe passes, and only the stall rule (a partition with events
  waiting and no progress for ``worker.stall_s``) can see that the consumer stopped.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import redis
from support.reliability_helpers import all_reflected, stream
from support.worker_harness import PARTITIONS, WorkerEnv, WorkerProcess, announce, produce, wait_until

from streamrec.kafka import ensure_topics
from streamrec.local.services import EmbeddedServices, start_broker, start_redis
from streamrec.serving.registry import ArtifactRef

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
STALL_S = 3.0


def _readiness(w: WorkerProcess) -> tuple[int, list[str]]:
    status, body = w.get("/readyz")
    return status, json.loads(body)["reasons"]


def _wait_for_reason(w: WorkerProcess, starts: str, timeout_s: float) -> tuple[float, str]:
    """Seconds until ``/readyz`` is 503 with a reason starting with ``starts``, and that reason."""
    t0, seen = time.monotonic(), []

    def named() -> bool:
        status, reasons = _readiness(w)
        seen.append((round(time.monotonic() - t0, 1), status, reasons))
        return status == 503 and any(r.startswith(starts) for r in reasons)

    wait_until(named, timeout_s, lambda: f"no {starts!r} reason; readiness seen: {seen[-5:]}\n{w.tail()}")
    return seen[-1][0], next(r for r in seen[-1][2] if r.startswith(starts))


def _wait_ready_again(w: WorkerProcess, timeout_s: float) -> float:
    t0 = time.monotonic()
    wait_until(lambda: _readiness(w)[0] == 200, timeout_s, lambda: f"readiness did not come back\n{w.tail()}")
    return time.monotonic() - t0


def test_frozen_broker_drops_readiness_naming_kafka_and_it_recovers(
    services: EmbeddedServices, unique_prefix: str, tmp_path: Path, shared_model: tuple[Path, ArtifactRef]
) -> None:
    """Pass: 40,000 events (5,000 users x 8) are in the topic before the worker starts; once it
    is ready and has processed some, its broker gets SIGSTOP. Within 10 s ``/readyz`` is 503
    naming "kafka not answering"; the worker stays alive. After SIGCONT ``/readyz`` is 200 again
    within 90 s with no restart, and every user's feed reflects the user's last event."""
    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    broker = start_broker(broker_dir)
    registry, ref = shared_model
    env = WorkerEnv(broker.address, services.redis, unique_prefix, tmp_path / "data", registry)
    env.extra["STREAMREC_WORKER__STALL_S"] = str(STALL_S)
    frozen = False
    try:
        env.create_topics()
        ensure_topics(env.broker, {f"{env.prefix}-sessions-changelog": (PARTITIONS, True)})
        announce(env.broker, env.topics["models"], ref)
        msgs = stream(5000, 8, tag="s")
        produce(env.broker, env.topics["events"], msgs)
        w = WorkerProcess(env, tmp_path / "worker.log").start()
        try:
            w.wait_ready(120)
            wait_until(lambda: w.metric("streamrec_events_total") > 0, 60, w.tail)
            broker.proc.send_signal(signal.SIGSTOP)
            frozen = True
            dropped, _ = _wait_for_reason(w, "kafka not answering", 10)
            w.check_alive()
            broker.proc.send_signal(signal.SIGCONT)
            frozen = False
            back = _wait_ready_again(w, 90)
            wait_until(lambda: all_reflected(env, msgs), 240, w.tail)
            w.check_alive()
            print(f"broker SIGSTOP: readiness 503 after {dropped:.1f} s; 200 {back:.1f} s after SIGCONT")
        finally:
            w.stop()
    finally:
        if frozen:
            broker.proc.send_signal(signal.SIGCONT)
        broker.stop()


def test_paused_redis_writes_drop_readiness_naming_a_stalled_consumer_and_it_recovers(
    wenv: WorkerEnv, tmp_path: Path
) -> None:
    """Pass: the worker runs on its own Redis (``worker.stall_s`` 3 s); Redis pauses writes for
    up to 120 s, then 400 events (100 users x 4) are produced. Within 30 s ``/readyz`` is 503 with
    a reason "consumer stalled ... events waiting" (the Kafka probe and Redis PING both pass);
    the worker stays alive. After ``CLIENT UNPAUSE`` ``/readyz`` is 200 again within 30 s, and
    every user's feed reflects the user's last event."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = start_redis(redis_dir)
    admin = redis.Redis.from_url(server.address)
    wenv.redis = server.address
    wenv.extra["STREAMREC_WORKER__STALL_S"] = str(STALL_S)
    try:
        w = WorkerProcess(wenv, tmp_path / "worker.log").start()
        try:
            w.wait_ready(120)
            admin.execute_command("CLIENT", "PAUSE", "120000", "WRITE")
            msgs = stream(100, 4, tag="p")
            produce(wenv.broker, wenv.topics["events"], msgs)
            dropped, reason = _wait_for_reason(w, "consumer stalled", 30)
            assert "events waiting" in reason, reason
            w.check_alive()
            admin.execute_command("CLIENT", "UNPAUSE")
            back = _wait_ready_again(w, 30)
            wait_until(lambda: all_reflected(wenv, msgs), 60, w.tail)
            w.check_alive()
            print(
                f"Redis writes paused: readiness 503 after {dropped:.1f} s ({reason}); 200 {back:.1f} s after unpause"
            )
        finally:
            w.stop()
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        admin.close()
        server.stop()
