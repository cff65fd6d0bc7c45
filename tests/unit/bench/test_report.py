"""The bench's result shaping: summary keys the issue names, JSON without NaN, RESULTS.md and
plots, stall detection from a worker timeline, py-spy stack folding, argument checks."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pytest

from streamrec.bench import report
from streamrec.bench.e2e_bench import stall_summary, window
from streamrec.bench.profile import classify, fold, thread_group
from streamrec.commands import bench as bench_cmd
from streamrec.errors import UserError
from streamrec.prom import parse


def _load(rate: int, p50: float, p99: float) -> dict[str, Any]:
    return {
        "offered_per_s": rate,
        "events_per_s": rate * 0.98,
        "latency_ms": {"p50": p50, "p95": (p50 + p99) / 2, "p99": p99},
        "batch_mean_events": 12.0,
        "score_ms_per_batch": 9.0,
        "score_share_of_wall": 0.1,
        "loadavg": (1.0, 1.0, 1.0),
    }


def _model_runs() -> list[dict[str, Any]]:
    runs = []
    for items in (10_000, 100_000):
        for batch, speedup in ((1, 3.0), (64, 1.5)):
            runs.append(
                {
                    "items": items,
                    "batch": batch,
                    "eager_ms": 10.0 * speedup,
                    "onnx_ms": 10.0,
                    "speedup": speedup + (items == 100_000),
                    "eager_events_per_s": batch / (0.01 * speedup),
                    "onnx_events_per_s": batch / 0.01,
                    "runner_events_per_s": batch / 0.012,
                }
            )
    return runs


def _result() -> dict[str, Any]:
    e2e = {
        "config": {"n_items": 50_000, "n_users": 10_000, "fetch_max_wait_ms": None},
        "worker_fetch_max_wait_ms": 1500,
        "loads": [_load(250, 450.0, 960.0), _load(1000, 1600.0, 2400.0)],
        "events_per_s": 1800.0,
        "saturation": {"events": 40_000, "events_per_s_overall": 1500.0, "worker_alone": {"events_per_s": 1800.0}},
        "timeline": {"offered_per_s": 250, "tick_s": 0.25, "zero_share": 0.6, "stall_period_s": 0.75},
    }
    patch = {**e2e, "config": {**e2e["config"], "fetch_max_wait_ms": 100}, "worker_fetch_max_wait_ms": 100}
    patch["loads"] = [_load(250, 50.0, 100.0), _load(1000, 80.0, 200.0)]
    return {
        "machine": report.machine(),
        "e2e": e2e,
        "e2e_fetch_compare": patch,
        "model": {"runs": _model_runs(), "machine": {"runner_device": "cpu"}},
        "scaling": {
            "state_per_user": [
                {"events_in_session": 1, "items_kept": 1, "ids_kept": 1, "json_bytes": 94, "python_bytes": 780.0}
            ],
            "users": [
                {
                    "users": 10_000,
                    "state_rss_mb": 25.0,
                    "bytes_per_user": 2500.0,
                    "session_path_events_per_s": 40_000.0,
                    "session_path_us_per_event": 25.0,
                }
            ],
        },
    }


def test_summary_has_the_keys_the_issue_names() -> None:
    out = report.summarise(_result())
    assert out["e2e"]["events_per_s"] == 1800.0
    assert out["e2e"]["latency_ms"]["p50"] == {"250": 450.0, "1000": 1600.0}
    assert out["e2e"]["latency_ms"]["p99"]["1000"] == 2400.0
    ovt = out["model"]["onnx_vs_torch"]
    assert ovt["items"] == 100_000  # the 100k catalogue when it was run
    assert ovt["batch_1"] == 4.0 and ovt["batch_64"] == 2.5
    assert ovt["by_items"]["10000"] == {"batch_1": 3.0, "batch_64": 1.5}
    tg = out["e2e"]["targets"]
    assert tg["events_per_s"]["met"] is False and tg["p99_ms_at_1000"]["met"] is False


def test_json_has_no_nan(tmp_path: Path) -> None:
    res = report.summarise(_result())
    res["e2e"]["loads"][0]["latency_ms"]["p50"] = math.nan
    path = tmp_path / "r.json"
    report.write_json(res, path)
    back = json.loads(path.read_text())  # strict JSON: NaN became null
    assert back["e2e"]["loads"][0]["latency_ms"]["p50"] is None
    assert back["machine"]["cores"] >= 1
    assert "onnxruntime_providers" in back["machine"]


def test_results_page_and_plots(tmp_path: Path) -> None:
    res = report.summarise(_result())
    bench_cmd.write_results(res, tmp_path, "streamrec bench --x")
    md = (tmp_path / "RESULTS.md").read_text()
    assert "streamrec bench --x" in md
    assert "| 1,000 | 980 | 1,600 |" in md
    assert "fetch_max_wait_ms=100" in md and "1,600 → 80" in md
    assert "![latency vs load](latency_vs_load.png)" in md
    for png in ("latency_vs_load.png", "throughput_vs_catalogue.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stalls_are_found_in_a_bursty_timeline() -> None:
    # 150 events every 0.75 s, sampled every 0.25 s: two idle ticks out of three
    ticks = [(0.25 * i, 150.0 * (i // 3), 0) for i in range(25)]
    s = stall_summary(ticks, 0.25)
    assert s["zero_share"] == pytest.approx(2 / 3, abs=0.05)
    assert s["stall_period_s"] == pytest.approx(0.75)
    smooth = stall_summary([(0.25 * i, 50.0 * i, 0) for i in range(25)], 0.25)
    assert smooth["zero_ticks"] == 0 and smooth["stall_period_s"] is None


def test_window_is_the_difference_of_two_scrapes() -> None:
    def scrape(events: int, lat_counts: tuple[int, int, int]) -> str:
        a, b, c = lat_counts
        return (
            "# TYPE streamrec_events_total counter\n"
            f"streamrec_events_total {events}\n"
            "# TYPE streamrec_event_to_feed_seconds histogram\n"
            f'streamrec_event_to_feed_seconds_bucket{{le="0.1"}} {a}\n'
            f'streamrec_event_to_feed_seconds_bucket{{le="1.0"}} {b}\n'
            f'streamrec_event_to_feed_seconds_bucket{{le="+Inf"}} {c}\n'
            f"streamrec_event_to_feed_seconds_count {c}\n"
            f"streamrec_event_to_feed_seconds_sum {c * 0.05}\n"
        )

    before = parse(scrape(1000, (1000, 1000, 1000)))  # earlier events: all fast
    after = parse(scrape(3000, (1000, 3000, 3000)))  # the window's 2,000: all in (0.1, 1.0]
    w = window(before, after, 2.0)
    assert w["events"] == 2000 and w["events_per_s"] == 1000.0
    assert 100.0 < w["latency_ms"]["p50"] <= 1000.0


def test_profile_folds_stacks_into_stages_per_thread() -> None:
    raw = "\n".join(
        [
            "thread (11): scoring_0;_worker (concurrent/futures/thread.py:90);recommend (serving/runner.py:160);"
            "_run (serving/runner.py:140);run_with_iobinding (onnxruntime/capi/x.py:1) 70",
            "thread (11): scoring_0;_worker (concurrent/futures/thread.py:90);get (queue.py:171) 30",
            "thread (12): MainThread;run (asyncio/events.py:84);process (streams/pipeline.py:99);"
            "validate_bytes (streamrec/contracts/events.py:120) 40",
            "thread (12): MainThread;run (asyncio/events.py:84);select (selectors.py:468) 60",
        ]
    )
    out = fold(raw)["threads"]
    assert out["scoring"]["stages"]["encode + top-K (onnxruntime)"] == pytest.approx(0.7)
    assert out["scoring"]["busy_share"] == pytest.approx(0.7)
    main = out["event loop (main thread)"]["stages"]
    assert main["validate"] == pytest.approx(0.4) and main["idle (waiting)"] == pytest.approx(0.6)
    # asyncio's own events.py is not our validation
    assert classify(["run (asyncio/events.py:84)"]) == "other Python"
    assert thread_group("feed-sink_0") == "feed-sink"


@pytest.mark.parametrize("only", ["", "e2e,gpu", ","])
def test_bad_parts_are_refused(only: str) -> None:
    with pytest.raises(UserError):
        bench_cmd.parse_parts(only)


@pytest.mark.parametrize("loads", ["a,b", "0,10", ""])
def test_bad_loads_are_refused(loads: str) -> None:
    with pytest.raises(UserError):
        bench_cmd.parse_loads(loads)


def test_arguments() -> None:
    parser = argparse.ArgumentParser()
    bench_cmd.add_arguments(parser)
    args = parser.parse_args(["--quick", "--json", "x.json", "--only", "model"])
    assert args.quick and args.json == Path("x.json") and bench_cmd.parse_parts(args.only) == ["model"]
    assert bench_cmd.parse_loads("250,1000") == (250, 1000)
