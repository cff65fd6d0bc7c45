"""At-least-once under failure (docs/architecture.md, invariants 1 and 4), with the worker as a real process:
SIGKILL mid-stream then restart loses no event and applies none twice; Redis down for a while
then back loses no event, readiness drops meanwhile; SIGTERM commits processed offsets."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from support.reliability_helpers import all_reflected, expected_sessions, produce_slowly
from support.worker_harness import (
    WorkerEnv,
    WorkerProcess,
    announce,
    build_artifact,
    event,
    produce,
    session_table,
    wait_until,
)

from streamrec.local.services import start_redis

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

USERS, PER_USER = 40, 8  # 8 = the session length L of the test model: nothing is trimmed


def _stream(n_users: int = USERS, per_user: int = PER_USER) -> list[tuple[str, dict]]:
    """Round-robin over users; each event has a unique item so a duplicate is visible."""
    return [
        (f"u{u}", event(step * n_users + u, f"u{u}", f"item-{(step * n_users + u) % 200}"))
        for step in range(per_user)
        for u in range(n_users)
    ]


@pytest.fixture
def wenv(wenv: WorkerEnv) -> WorkerEnv:
    """The shared worker env with a model already announced."""
    announce(wenv.broker, wenv.topics["models"], build_artifact(wenv.registry_dir))
    return wenv


def test_sigkill_mid_stream_loses_no_event_and_applies_none_twice(wenv: WorkerEnv, tmp_path: Path) -> None:
    msgs = _stream()
    w = WorkerProcess(wenv, tmp_path / "worker.log").start()
    try:
        w.wait_ready()
        producer = produce_slowly(wenv.broker, wenv.topics["events"], msgs, per_s=80)
        # Kill once part of the stream is processed (feeds exist) and part is still coming.
        wait_until(lambda: w.metric("streamrec_events_total") >= len(msgs) // 3, 60, lambda: w.tail())
        w.stop(signal.SIGKILL)
        assert w.proc is not None and w.proc.returncode == -signal.SIGKILL
        producer.join(60)
        w2 = WorkerProcess(wenv, tmp_path / "worker2.log").start()
        try:
            w2.wait_ready()
            wait_until(lambda: all_reflected(wenv, msgs), 90, lambda: f"not all events reflected:\n{w2.tail()}")
            table = session_table(wenv.broker, wenv.prefix)
            want = expected_sessions(msgs)
            assert {u: table[u]["i"] for u in want} == want  # every event once, in order
        finally:
            assert w2.stop() == 0
    finally:
        w.stop(signal.SIGKILL)


def test_redis_down_then_back_loses_no_event(wenv: WorkerEnv, tmp_path: Path) -> None:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = start_redis(redis_dir)
    wenv.redis = redis.address
    first, second = _stream(10, 3), [(u, {**e, "event_id": "b" + e["event_id"]}) for u, e in _stream(10, 3)]
    produce(wenv.broker, wenv.topics["events"], first)
    w = WorkerProcess(wenv, tmp_path / "worker.log").start()
    try:
        w.wait_ready()
        wait_until(lambda: all_reflected(wenv, first), 60, lambda: w.tail())
        redis.stop()
        produce(wenv.broker, wenv.topics["events"], second)
        wait_until(lambda: w.get("/readyz")[0] == 503, 15, "readiness did not drop while Redis was down")
        assert "redis unreachable" in w.get("/readyz")[1]
        wait_until(lambda: w.metric("streamrec_redis_errors_total") >= 2, 30, lambda: w.tail())
        time.sleep(2)
        redis = start_redis(redis_dir, port=redis.port)  # back, empty (no persistence)
        wait_until(lambda: all_reflected(wenv, second), 60, lambda: f"events lost after Redis came back:\n{w.tail()}")
        wait_until(lambda: w.get("/readyz")[0] == 200, 15, "readiness did not come back")
        table = session_table(wenv.broker, wenv.prefix)
        want = expected_sessions(first + second)
        assert {u: table[u]["i"] for u in want} == want
        assert w.stop() == 0  # SIGTERM: graceful, exit 0
    finally:
        w.stop(signal.SIGKILL)
        redis.stop()


def test_sigterm_commits_processed_offsets(wenv: WorkerEnv, tmp_path: Path) -> None:
    msgs = _stream(5, 2)
    produce(wenv.broker, wenv.topics["events"], msgs)
    w = WorkerProcess(wenv, tmp_path / "worker.log").start()
    w.wait_ready()
    wait_until(lambda: all_reflected(wenv, msgs), 60, lambda: w.tail())
    assert w.stop() == 0
    # Restarted, it resumes after the committed offsets: nothing is re-processed.
    w2 = WorkerProcess(wenv, tmp_path / "worker2.log").start()
    try:
        w2.wait_ready()
        more = [("u0", event(999, "u0", "item-199"))]
        produce(wenv.broker, wenv.topics["events"], more)
        wait_until(lambda: all_reflected(wenv, more), 60, lambda: w2.tail())
        assert w2.metric("streamrec_events_total") == 1
        assert w2.metric("streamrec_duplicates_total") == 0
    finally:
        w2.stop()
