"""Issue #9, items 1 and 2 (docs/architecture.md, invariant 1): a worker SIGKILLed mid-stream and restarted,
and a consumer-group rebalance (a second worker joins mid-stream, then the first leaves), each
leave every produced event in its user's session exactly once and the final feeds equal to those
of an undisturbed run of the same events (one worker, no fault, same model)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.reliability_helpers import (
    Msgs,
    all_reflected,
    expected_sessions,
    feed_differences,
    final_feeds,
    produce_slowly,
    session_differences,
    sessions_of,
    sibling,
    stream,
)
from support.worker_harness import WorkerEnv, WorkerProcess, announce, produce, running_worker, wait_until

from streamrec.contracts.feed import Feed
from streamrec.local.services import EmbeddedServices
from streamrec.serving.registry import ArtifactRef

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

USERS, PER_USER = 40, 8  # 8 = the test model's session length L: nothing is trimmed from a session
MSGS: Msgs = stream(USERS, PER_USER)
USER_IDS = sorted({u for u, _ in MSGS})


@pytest.fixture(scope="module")
def undisturbed_feeds(
    services: EmbeddedServices, tmp_path_factory: pytest.TempPathFactory, shared_model: tuple[Path, ArtifactRef]
) -> Iterator[dict[str, Feed | None]]:
    """The reference: the same events through one worker that nothing disturbs."""
    tmp = tmp_path_factory.mktemp("undisturbed")
    registry, ref = shared_model
    env = WorkerEnv(services.broker, services.redis, f"t-undisturbed-{tmp.name}", tmp / "data", registry)
    env.create_topics()
    announce(env.broker, env.topics["models"], ref)
    produce(env.broker, env.topics["events"], MSGS)
    with running_worker(env, tmp / "worker.log") as w:
        w.wait_ready()
        wait_until(lambda: all_reflected(env, MSGS), 90, lambda: w.tail())
        assert sessions_of(env, USER_IDS) == expected_sessions(MSGS)
        yield final_feeds(env, USER_IDS)


def _assert_same_as_undisturbed(env: WorkerEnv, reference: dict[str, Feed | None], note: str = "") -> None:
    sessions = session_differences(sessions_of(env, USER_IDS), expected_sessions(MSGS))
    feeds = feed_differences(final_feeds(env, USER_IDS), reference)
    assert (sessions, feeds) == ([], []), (
        f"{note}\n{len(sessions)} sessions differ from the events produced:\n"
        + "\n".join(sessions)
        + f"\n{len(feeds)} feeds differ from the undisturbed run's:\n"
        + "\n".join(feeds)
    )


def test_sigkill_mid_stream_then_restart_reflects_every_event_once(
    wenv: WorkerEnv, tmp_path: Path, undisturbed_feeds: dict[str, Feed | None]
) -> None:
    """Pass: the worker is SIGKILLed after a third of the events were processed while the rest
    are still being produced; after a restart every user's session (from the changelog) holds
    each of the user's events exactly once, in order, and every final feed (items, scores,
    model version, causing event) equals the undisturbed run's."""
    w = WorkerProcess(wenv, tmp_path / "worker.log").start()
    try:
        w.wait_ready()
        producer = produce_slowly(wenv.broker, wenv.topics["events"], MSGS, per_s=80)
        wait_until(lambda: w.metric("streamrec_events_total") >= len(MSGS) // 3, 60, lambda: w.tail())
        w.stop(signal.SIGKILL)
        assert w.proc is not None and w.proc.returncode == -signal.SIGKILL
        producer.join(60)
        with running_worker(wenv, tmp_path / "worker2.log") as w2:
            w2.wait_ready()
            wait_until(lambda: all_reflected(wenv, MSGS), 90, lambda: f"events not reflected:\n{w2.tail()}")
            _assert_same_as_undisturbed(wenv, undisturbed_feeds)
    finally:
        w.stop(signal.SIGKILL)


def test_rebalance_join_then_leave_reflects_every_event_once(
    wenv: WorkerEnv, tmp_path: Path, undisturbed_feeds: dict[str, Feed | None]
) -> None:
    """Pass: worker A starts alone; mid-stream worker B joins the group (rebalance: partitions
    move to B), later A leaves with SIGTERM (rebalance: B takes all); the stream keeps being
    produced throughout. Every session holds each event exactly once, in order (redeliveries
    from the rebalances, and Tansu's duplicates after concurrent rebalances, are deduplicated),
    B consumed events, and the final feeds equal the undisturbed run's."""
    a = WorkerProcess(wenv, tmp_path / "a.log").start()
    b = WorkerProcess(sibling(wenv, "data-b"), tmp_path / "b.log")
    try:
        a.wait_ready()
        producer = produce_slowly(wenv.broker, wenv.topics["events"], MSGS, per_s=25)  # ~13 s
        wait_until(lambda: a.metric("streamrec_events_total") >= 40, 60, lambda: a.tail())
        b.start()
        b.wait_ready()
        wait_until(lambda: b.metric("streamrec_events_total") >= 20, 60, lambda: f"B got no partition:\n{b.tail()}")
        a_consumed = a.metric("streamrec_events_total")
        assert a.stop() == 0  # A leaves gracefully mid-stream (commits what it processed)
        producer.join(60)
        wait_until(lambda: all_reflected(wenv, MSGS), 90, lambda: f"events not reflected:\n{b.tail()}")
        counts = (
            f"A consumed >= {a_consumed:.0f} before its SIGTERM, B consumed {b.metric('streamrec_events_total'):.0f} "
            f"(B duplicates {b.metric('streamrec_duplicates_total'):.0f}) of {len(MSGS)} produced"
        )
        _assert_same_as_undisturbed(wenv, undisturbed_feeds, counts)
        assert b.stop() == 0
    finally:
        a.stop(signal.SIGKILL)
        if b.proc is not None:
            b.stop(signal.SIGKILL)
