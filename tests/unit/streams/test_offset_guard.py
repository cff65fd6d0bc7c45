"""The offset-continuity guard (streams/acks.py, step 1): a record that goes missing between the
consumer and the agent is fetched again before anything above it is processed."""

from __future__ import annotations

import pytest

from streamrec.streams.acks import OffsetGuard, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_guard(committed: dict[int, int | None] | None = None) -> tuple[OffsetGuard, Clock]:
    clock = Clock()
    table = committed or {}
    return OffsetGuard(lambda p: table.get(p), max_seeks=3, reseek_s=2.0, clock=clock), clock


def test_in_order_records_pass_and_advance() -> None:
    guard, _ = make_guard({0: 10})
    assert [guard.check(0, o) for o in (10, 11, 12)] == [Verdict.PROCESS] * 3
    assert guard.expected(0) == 13


def test_without_a_committed_offset_the_first_record_sets_the_position() -> None:
    guard, _ = make_guard()
    assert guard.check(3, 500) is Verdict.PROCESS
    assert guard.check(3, 502) is Verdict.SEEK
    assert guard.expected(3) == 501


def test_a_hole_after_an_assignment_is_measured_from_the_committed_offset() -> None:
    guard, _ = make_guard({1: 33})
    assert guard.check(1, 34) is Verdict.SEEK  # 33 never arrived
    assert guard.expected(1) == 33


def test_records_above_a_hole_are_held_back_until_the_missing_one_arrives() -> None:
    guard, clock = make_guard({0: 0})
    assert guard.check(0, 0) is Verdict.PROCESS
    assert guard.check(0, 2) is Verdict.SEEK  # 1 is missing: seek back to it
    assert guard.check(0, 3) is Verdict.HOLD_BACK  # queued before the seek took effect
    clock.now += 0.5
    assert guard.check(0, 1) is Verdict.PROCESS  # re-fetched
    assert [guard.check(0, o) for o in (2, 3)] == [Verdict.PROCESS] * 2


def test_redelivered_records_pass_without_moving_the_position_back() -> None:
    guard, _ = make_guard({0: 0})
    for o in range(5):
        guard.check(0, o)
    assert guard.check(0, 2) is Verdict.PROCESS  # a duplicate: the session dedupe drops it
    assert guard.expected(0) == 5


def test_partitions_are_independent() -> None:
    guard, _ = make_guard({0: 0, 1: 0})
    assert guard.check(0, 0) is Verdict.PROCESS
    assert guard.check(1, 4) is Verdict.SEEK
    assert guard.check(0, 1) is Verdict.PROCESS


def test_a_real_hole_is_accepted_after_max_seeks(caplog: pytest.LogCaptureFixture) -> None:
    guard, clock = make_guard({0: 7})
    verdicts = []
    for _ in range(4):
        verdicts.append(guard.check(0, 9))  # 7 and 8 never come back (transaction markers)
        clock.now += 2.5
    assert verdicts == [Verdict.SEEK, Verdict.SEEK, Verdict.SEEK, Verdict.PROCESS]
    assert guard.expected(0) == 10
    assert "accepting the hole" in caplog.text


def test_reseek_waits_for_the_interval() -> None:
    guard, clock = make_guard({0: 0})
    assert guard.check(0, 5) is Verdict.SEEK
    clock.now += 1.0
    assert guard.check(0, 6) is Verdict.HOLD_BACK
    clock.now += 1.5
    assert guard.check(0, 7) is Verdict.SEEK


def test_reset_forgets_positions_and_holes() -> None:
    guard, _ = make_guard({0: 20})
    guard.check(0, 20)
    guard.check(0, 25)
    guard.reset()
    assert guard.expected(0) is None
    assert guard.check(0, 20) is Verdict.PROCESS


def test_accepting_a_hole_skips_only_the_missing_offsets() -> None:
    """The broker lost offset 110 (acknowledged, absent). 111 onwards arrived and were held back
    while the guard sought 110; once it gives up on 110 it seeks back to 111, the lowest offset
    that arrived above it, instead of skipping the held-back records with it."""
    guard, clock = make_guard({0: 110})
    assert guard.check(0, 111) is Verdict.SEEK
    for offset in (172, 183):
        clock.now += 2.5
        assert guard.check(0, offset) is Verdict.SEEK
    clock.now += 2.5
    assert guard.check(0, 188) is Verdict.SEEK  # gives up on 110
    assert guard.expected(0) == 111
    assert [guard.check(0, o) for o in (111, 112, 113)] == [Verdict.PROCESS] * 3
