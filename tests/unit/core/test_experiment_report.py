"""The experiment report's figures: Wilson and Newcombe intervals against published values and by
their coverage, and the per-arm counts added up over workers and versions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamrec.experiment import parse_arms
from streamrec.experiment_report import arm_counts, difference_interval, ratio_interval, report, wilson
from streamrec.prom import parse


def test_wilson_and_newcombe_match_the_published_examples() -> None:
    # Newcombe, Statistics in Medicine 17 (1998): 81/263 -> 0.2553-0.3662 (single proportion, Wilson);
    # 56/70 - 48/80 -> 0.0524-0.3339 (difference, hybrid score method 10)
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-5)
    assert difference_interval(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=5e-5)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and 0.27 < hi < 0.28  # stays in [0, 1] where the normal interval would not
    assert all(math.isnan(x) for x in wilson(0, 0))


def test_intervals_cover_the_true_rate_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    p1, p2, n1, n2, trials = 0.12, 0.10, 2_000, 3_000, 2_000
    x1, x2 = rng.binomial(n1, p1, trials), rng.binomial(n2, p2, trials)
    one = np.mean([lo <= p1 <= hi for lo, hi in (wilson(x, n1) for x in x1)])
    diff = np.mean(
        [lo <= p1 - p2 <= hi for lo, hi in (difference_interval(a, n1, b, n2) for a, b in zip(x1, x2, strict=True))]
    )
    ratio = np.mean(
        [lo <= p1 / p2 <= hi for lo, hi in (ratio_interval(a, n1, b, n2) for a, b in zip(x1, x2, strict=True))]
    )
    for coverage in (one, diff, ratio):
        assert 0.93 < coverage < 0.97  # sd of a coverage estimate over 2,000 trials ~ 0.5 points


WORKER_A = """
streamrec_live_events_with_feed_total{arm="online",version="v2"} 600
streamrec_live_events_with_feed_total{arm="online",version="v1"} 400
streamrec_live_hits_at_10_total{arm="online",version="v2"} 90
streamrec_live_hits_at_10_total{arm="online",version="v1"} 50
streamrec_live_events_with_feed_total{arm="control",version="popularity"} 500
streamrec_live_hits_at_10_total{arm="control",version="popularity"} 50
streamrec_live_events_without_feed_total{arm="online"} 7
"""
WORKER_B = """
streamrec_live_events_with_feed_total{arm="control",version="popularity"} 500
streamrec_live_hits_at_10_total{arm="control",version="popularity"} 50
"""


def test_report_adds_up_workers_and_versions_and_compares_with_the_control() -> None:
    counts = arm_counts([parse(WORKER_A), parse(WORKER_B)])
    arms = parse_arms("online:50:latest,frozen:25:version=v1,control:25:popularity")
    out = report(counts, "control", arms)
    assert out["control"] == "control" and [r["arm"] for r in out["arms"]] == ["online", "frozen", "control"]
    online, frozen, control = out["arms"]
    assert (online["events_with_feed"], online["hits_at_10"], online["events_without_feed"]) == (1000, 140, 7)
    assert online["versions"] == {"v1": 400, "v2": 600} and online["policy"] == "latest"
    assert online["hit_rate_at_10"] == 0.14 and control["hit_rate_at_10"] == 0.1
    assert online["ci95"] == pytest.approx(list(wilson(140, 1000)), abs=1e-5)
    vs = online["vs_control"]
    assert vs["difference"] == pytest.approx(0.04) and vs["relative"] == pytest.approx(0.4)
    assert vs["difference_ci95"] == pytest.approx(list(difference_interval(140, 1000, 100, 1000)), abs=1e-5)
    assert vs["difference_ci95"][0] > 0  # 14% vs 10% on 1,000 events each: the interval excludes 0
    lo, hi = ratio_interval(140, 1000, 100, 1000)
    assert vs["relative_ci95"] == pytest.approx([lo - 1, hi - 1], abs=1e-5)
    # an arm with no events yet is listed, its figures null (JSON has no NaN)
    assert frozen["events_with_feed"] == 0 and frozen["hit_rate_at_10"] is None
    assert frozen["ci95"] == [None, None] and frozen["vs_control"]["difference"] is None
    assert "vs_control" not in control


def test_without_an_experiment_the_one_arm_is_all() -> None:
    text = 'streamrec_live_events_with_feed_total{arm="all",version="v1"} 10\n'
    text += 'streamrec_live_hits_at_10_total{arm="all",version="v1"} 3\n'
    out = report(arm_counts([parse(text)]), "all")
    assert [(r["arm"], r["hit_rate_at_10"], "vs_control" in r) for r in out["arms"]] == [("all", 0.3, False)]
