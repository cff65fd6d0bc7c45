"""The trainer's live gate: it counts, per example, the feed's version (the canary's or the stable
one's; any other is ignored) and whether the clicked item was in its top 10; it rolls the canary
out within the tolerance, back below it, and back when too few canary events came in time; a
restart mid-trial judges the announced canary afresh."""

from __future__ import annotations

from streamrec.contracts.announcement import Canary, as_canary
from streamrec.contracts.feed_digest import feed_digest
from streamrec.contracts.training_batch import Example
from streamrec.settings.encoder import TrainerSettings
from streamrec.trainer.live_gate import LiveGate

FEED = [f"i{j}" for j in range(20)]


def _ex(version: str, clicked: str, n: int = 0) -> Example:
    return Example(f"u{n}", ["i0"], ["click"], clicked, "click", 0.0, f"e{n}", None, feed_digest(version, FEED))


def _gate(now: list[float], **settings: float) -> LiveGate:
    s = TrainerSettings(**{"canary_min_events": 10, "canary_tolerance": 0.1, "canary_timeout_s": 60, **settings})
    gate = LiveGate(s, clock=lambda: now[0])
    gate.start({"version": "v2", "metrics": {"online": {}}}, Canary("v2", "v1", 10))
    return gate


def test_counts_by_the_feeds_version_and_top_10() -> None:
    gate = _gate([0.0])
    gate.observe([_ex("v2", "i3"), _ex("v2", "i15"), _ex("v2", "nope"), _ex("v1", "i0"), _ex("v0", "i1")])
    gate.observe([Example("u", [], [], "i1", "click", 0.0, "e")])  # no feed: not counted
    live = gate.live()
    assert live["canary"] == {"version": "v2", "events": 3, "hits@10": 1, "hit@10": round(1 / 3, 6)}
    assert live["stable"]["events"] == 1 and live["stable"]["hits@10"] == 1


def test_rollout_within_the_tolerance_with_the_live_counts_in_the_announcement() -> None:
    gate = _gate([0.0])
    gate.observe([_ex("v2", "i1" if n % 10 else "x", n) for n in range(10)])  # 0.9
    gate.observe([_ex("v1", "i1", n) for n in range(10)])  # 1.0
    settled = gate.settle(lambda v: {"version": v})
    assert settled is not None
    canary, verdict, ann = settled
    assert verdict.rollout and canary.version == "v2"
    assert ann["version"] == "v2" and "canary" not in ann and ann["metrics"]["live"]["canary"]["hit@10"] == 0.9
    assert gate.canary is None and gate.settle(lambda v: {}) is None


def test_rollback_below_the_tolerance_announces_the_stable_version() -> None:
    gate = _gate([0.0])
    gate.observe([_ex("v2", "i1" if n % 2 else "x", n) for n in range(9)])
    assert gate.verdict() is None  # 9 of 10 canary events
    gate.observe([_ex("v2", "x", 9), *[_ex("v1", "i1", n) for n in range(10)]])
    settled = gate.settle(lambda v: {"version": v, "sha256": "s"})
    assert settled is not None
    _canary, verdict, ann = settled
    assert not verdict.rollout and "below" in verdict.reason
    assert ann["version"] == "v1" and ann["sha256"] == "s" and ann["rolled_back"]["version"] == "v2"


def test_too_few_canary_events_in_time_roll_back() -> None:
    now = [0.0]
    gate = _gate(now)
    gate.observe([_ex("v2", "i1")])
    assert gate.verdict() is None
    now[0] = 61.0
    verdict = gate.verdict()
    assert verdict is not None and not verdict.rollout and "only 1 canary events" in verdict.reason


def test_a_restart_mid_trial_judges_the_announced_canary_afresh() -> None:
    gate = LiveGate(TrainerSettings())
    ann = as_canary({"version": "v2", "metrics": {}}, "v1", 10)
    assert gate.resume(ann, "v2") == "v1" and gate.canary == Canary("v2", "v1", 10)
    assert "canary" not in gate.announcement
    other = LiveGate(TrainerSettings())
    assert other.resume(ann, "v3") == "v3" and other.canary is None  # not the version it resumed from
    assert other.resume({"version": "v3"}, "v3") == "v3" and other.canary is None


def test_examples_of_events_published_before_the_trial_are_not_counted() -> None:
    gate = _gate([100.0])
    late = Example("u", ["i0"], ["click"], "i1", "click", 0.0, "e", 99.0, feed_digest("v1", FEED))
    gate.observe([late, _ex("v1", "i1")])
    assert gate.live()["stable"]["events"] == 1


def test_a_small_loss_within_the_noise_rolls_out_where_the_point_estimate_would_not() -> None:
    def verdict(confidence: float) -> bool:
        gate = _gate([0.0], canary_confidence=confidence)
        gate.observe([_ex("v2", "i1" if n % 4 else "x", n) for n in range(40)])  # 0.75
        gate.observe([_ex("v1", "i1" if n % 10 else "x", n) for n in range(400)])  # 0.9
        v = gate.verdict()
        assert v is not None
        return v.rollout

    assert verdict(0.95) and not verdict(0.5)
