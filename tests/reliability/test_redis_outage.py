"""Issue #9, item 4 (docs/architecture.md, invariant 4): Redis down for 30 s, then back. The worker retries
with backoff, readiness drops meanwhile, no event is lost, the feeds catch up, and the consumer
group's committed offsets never run ahead of the feed writes."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from support.reliability_helpers import (
    all_reflected,
    committed_offsets,
    expected_sessions,
    session_differences,
    sessions_of,
    stream,
)
from support.worker_harness import PARTITIONS, WorkerEnv, WorkerProcess, produce, wait_until

from streamrec.local.services import start_redis

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

OUTAGE_S = 30.0


def test_redis_down_30s_loses_nothing_and_commits_no_offset_ahead_of_writes(wenv: WorkerEnv, tmp_path: Path) -> None:
    """Pass: 60 events are processed; Redis is stopped; 60 more events (touching every user)
    are produced during a 30 s outage. Throughout the outage the group's committed offsets stay
    at the end of the first 60 (none of the unwritten events is committed), readiness is 503
    naming Redis and the worker stays up. After Redis comes back (empty: no persistence), every
    user's feed reflects the user's last event, committed offsets reach the end of the topic,
    every session holds all 12 events once, and readiness returns to 200."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = start_redis(redis_dir)
    wenv.redis = redis.address
    wenv.extra["STREAMREC_WORKER__REDIS_RETRY_MAX_S"] = "2"
    first, second = stream(20, 3, tag="a"), stream(20, 3, tag="b")
    produce(wenv.broker, wenv.topics["events"], first)
    w = WorkerProcess(wenv, tmp_path / "worker.log").start()
    group, topic = wenv.prefix, wenv.topics["events"]
    try:
        w.wait_ready()
        wait_until(lambda: all_reflected(wenv, first), 60, lambda: w.tail())
        # The topic holds only this test's events, one offset each: committed offsets summing to
        # len(first) = everything processed so far is committed. (Tansu's ListOffsets "latest"
        # answered 1 here, so the end offsets are not read from the broker.)
        wait_until(
            lambda: sum(committed_offsets(wenv.broker, group, topic, PARTITIONS).values()) == len(first),
            20,
            lambda: f"first events not committed: {committed_offsets(wenv.broker, group, topic, PARTITIONS)}",
        )
        end_first = committed_offsets(wenv.broker, group, topic, PARTITIONS)
        redis.stop()
        t_down = time.monotonic()
        produce(wenv.broker, topic, second)
        wait_until(lambda: w.get("/readyz")[0] == 503, 15, "readiness did not drop while Redis was down")
        assert "redis" in w.get("/readyz")[1].lower()
        while time.monotonic() - t_down < OUTAGE_S:
            w.check_alive()
            assert committed_offsets(wenv.broker, group, topic, PARTITIONS) == end_first, "committed ahead of writes"
            time.sleep(2)
        errors = w.metric("streamrec_redis_errors_total")
        assert errors >= 3, "the worker did not keep retrying"
        redis = start_redis(redis_dir, port=redis.port)
        wait_until(lambda: all_reflected(wenv, second), 60, lambda: f"events lost after Redis came back:\n{w.tail()}")
        wait_until(
            lambda: sum(committed_offsets(wenv.broker, group, topic, PARTITIONS).values()) == len(first + second),
            20,
            lambda: f"not committed after Redis came back: {committed_offsets(wenv.broker, group, topic, PARTITIONS)}",
        )
        wait_until(lambda: w.get("/readyz")[0] == 200, 15, "readiness did not come back")
        want = expected_sessions(first + second)
        assert session_differences(sessions_of(wenv, sorted(want)), want) == []
        assert w.stop() == 0
    finally:
        w.stop(signal.SIGKILL)
        redis.stop()
