"""The experiment report's figures: Wilson and Newcombe intervals against published values and by
their coverage; the interval over buckets of users keeps its coverage where users differ (the
per-event ones do not); the per-arm counts added up over workers, versions and buckets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamrec.experiment import parse_arms
from streamrec.experiment_report import (
    arm_counts,
    clustered,
    clustered_difference,
    clustered_interval,
    difference_interval,
    ratio_interval,
    report,
    wilson,
)
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


def test_the_users_interval_covers_where_users_differ_and_the_events_interval_does_not() -> None:
    # 200 users of an arm, 50 events each, each user with their own hit rate (Beta(1, 3): mean 0.25),
    # hashed into 20 buckets: the per-event interval treats 10,000 events as independent
    rng = np.random.default_rng(3)
    trials, users, events = 1_000, 200, 50
    hits = rng.binomial(events, rng.beta(1.0, 3.0, (trials, users)))  # [trials, users]
    by_bucket = hits.reshape(trials, 20, users // 20).sum(axis=2)  # [trials, 20]
    n_bucket = float(events * users // 20)
    users_cover = events_cover = 0
    for row in by_bucket:
        c = clustered({str(b): [float(x), n_bucket] for b, x in enumerate(row)})
        lo, hi = clustered_interval(c)
        users_cover += lo <= 0.25 <= hi
        lo, hi = wilson(float(row.sum()), n_bucket * 20)
        events_cover += lo <= 0.25 <= hi
    assert 0.93 < users_cover / trials < 0.97
    assert events_cover / trials < 0.6  # design effect ~ 1 + 49 x 0.2: the per-event interval is ~3x too narrow


def test_the_users_difference_interval_covers_the_true_difference() -> None:
    rng = np.random.default_rng(5)
    trials, users, events = 1_000, 100, 40
    a = rng.binomial(events, rng.beta(1.2, 3.0, (trials, users))).reshape(trials, 20, -1).sum(axis=2)
    b = rng.binomial(events, rng.beta(1.0, 3.0, (trials, users))).reshape(trials, 20, -1).sum(axis=2)
    truth = 1.2 / 4.2 - 1.0 / 4.0
    n = float(events * users // 20)
    cover = 0
    for xa, xb in zip(a, b, strict=True):
        ca = clustered({str(i): [float(x), n] for i, x in enumerate(xa)})
        cb = clustered({str(i): [float(x), n] for i, x in enumerate(xb)})
        lo, hi = clustered_difference(ca, cb)
        cover += lo <= truth <= hi
    assert 0.93 < cover / trials < 0.98  # df = 19 for a sum of two arms' variances: a little conservative


def test_fewer_than_two_buckets_give_no_users_interval() -> None:
    assert all(math.isnan(x) for x in clustered_interval(clustered({"0": [3.0, 10.0]})))


WORKER_A = """
streamrec_live_events_with_feed_total{arm="online",version="v2"} 600
streamrec_live_events_with_feed_total{arm="online",version="v1"} 400
streamrec_live_hits_at_10_total{arm="online",version="v2"} 90
streamrec_live_hits_at_10_total{arm="online",version="v1"} 50
streamrec_live_events_with_feed_total{arm="control",version="popularity"} 500
streamrec_live_hits_at_10_total{arm="control",version="popularity"} 50
streamrec_live_events_without_feed_total{arm="online"} 7
streamrec_live_bucket_events_with_feed_total{arm="online",bucket="0"} 500
streamrec_live_bucket_events_with_feed_total{arm="online",bucket="1"} 500
streamrec_live_bucket_hits_at_10_total{arm="online",bucket="0"} 60
streamrec_live_bucket_hits_at_10_total{arm="online",bucket="1"} 80
streamrec_live_bucket_events_with_feed_total{arm="control",bucket="0"} 500
streamrec_live_bucket_hits_at_10_total{arm="control",bucket="0"} 40
"""
WORKER_B = """
streamrec_live_events_with_feed_total{arm="control",version="popularity"} 500
streamrec_live_hits_at_10_total{arm="control",version="popularity"} 50
streamrec_live_bucket_events_with_feed_total{arm="control",bucket="1"} 500
streamrec_live_bucket_hits_at_10_total{arm="control",bucket="1"} 60
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
    # over buckets: online 60/500 and 80/500, control 40/500 and 60/500 (a bucket's cells from two workers)
    assert online["user_buckets"] == 2 and control["user_buckets"] == 2
    c_online = clustered({"0": [60.0, 500.0], "1": [80.0, 500.0]})
    c_control = clustered({"0": [40.0, 500.0], "1": [60.0, 500.0]})
    assert c_online.rate == pytest.approx(0.14) and c_online.df == 1
    assert c_online.se == pytest.approx(math.sqrt(2 * (10.0**2 + 10.0**2)) / 1000)  # residuals -10, +10
    assert online["users_ci95"] == pytest.approx(list(clustered_interval(c_online)), abs=1e-5)
    assert vs["difference_users_ci95"] == pytest.approx(list(clustered_difference(c_online, c_control)), abs=1e-5)
    assert vs["difference_users_ci95"][0] < 0 < vs["difference_users_ci95"][1]  # two buckets: t = 12.7
    # an arm with no events yet is listed, its figures null (JSON has no NaN)
    assert frozen["events_with_feed"] == 0 and frozen["hit_rate_at_10"] is None
    assert frozen["ci95"] == frozen["users_ci95"] == [None, None] and frozen["vs_control"]["difference"] is None
    assert "vs_control" not in control


def test_without_an_experiment_the_one_arm_is_all() -> None:
    text = 'streamrec_live_events_with_feed_total{arm="all",version="v1"} 10\n'
    text += 'streamrec_live_hits_at_10_total{arm="all",version="v1"} 3\n'
    out = report(arm_counts([parse(text)]), "all")
    assert [(r["arm"], r["hit_rate_at_10"], "vs_control" in r) for r in out["arms"]] == [("all", 0.3, False)]
