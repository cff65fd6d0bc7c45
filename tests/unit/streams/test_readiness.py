"""The worker's readiness rule (streams/health.py): not ready while a partition with events waiting
has made no progress for ``stall_s``, or while no model is loaded; ready again once it moves."""

from __future__ import annotations

from streamrec.streams.health import ConsumerProgress, Health


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _health(clock: Clock, stall_s: float = 10.0) -> Health:
    return Health(ConsumerProgress(stall_s, clock), kafka_ok=True, redis_ok=True, model_version="v1")


def test_events_waiting_and_no_progress_for_stall_s_is_not_ready_until_it_moves() -> None:
    clock = Clock()
    h = _health(clock)
    h.progress.observe({0: 50, 1: 0}, {0: 99})
    clock.t += 9.9
    h.progress.observe({0: 50, 1: 0}, {0: 99})
    assert h.ready
    clock.t += 0.2
    assert h.reasons_not_ready() == ["consumer stalled: partitions [0] made no progress for 10s with 50 events waiting"]
    h.progress.observe({0: 50, 1: 0}, {0: 120})  # moved (still behind): ready at once
    assert h.ready


def test_no_events_waiting_is_never_stalled() -> None:
    clock = Clock()
    h = _health(clock)
    for _ in range(5):
        h.progress.observe({0: 0}, {0: 7})
        clock.t += 60
    assert h.ready
    h.progress.observe({0: 3}, {0: 7})  # events arrive: the clock starts now, not at the last move
    clock.t += 5
    assert h.ready
    clock.t += 5
    assert not h.ready


def test_one_stuck_partition_is_stalled_while_another_moves() -> None:
    clock = Clock()
    h = _health(clock)
    for k in range(12):
        h.progress.observe({0: 10, 1: 40}, {0: 5, 1: 100 + k})
        clock.t += 1
    assert [r for r in h.reasons_not_ready() if "partitions [0]" in r and "10 events" in r]


def test_a_partition_first_seen_with_a_backlog_and_one_revoked_start_or_stop_their_clock() -> None:
    clock = Clock()
    h = _health(clock)
    h.progress.observe({0: 10}, {})
    clock.t += 11
    assert not h.ready  # nothing processed since it was assigned
    h.progress.observe({1: 10}, {})  # 0 revoked, 1 newly assigned: nothing stalled yet
    assert h.ready
    h.progress.observe({}, {})  # no assignment (rebalancing)
    clock.t += 100
    assert h.ready


def test_no_model_is_not_ready_and_every_reason_is_named() -> None:
    clock = Clock()
    h = Health(ConsumerProgress(10.0, clock))
    h.progress.observe({0: 5}, {})
    clock.t += 10
    reasons = h.reasons_not_ready()
    assert reasons[:3] == ["kafka not answering", "redis unreachable", "no model loaded yet"]
    assert reasons[3].startswith("consumer stalled")
