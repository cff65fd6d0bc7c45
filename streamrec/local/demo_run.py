"""One demo run: topics, the initial model's announcement, the child processes, the replay
with its live view, and the summary. Numbers come from the processes' own metrics endpoints
(the online hit rate too: the worker's live counters, streamrec.local.live_hits), never from the
replayer's guesses."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamrec.config import Settings
from streamrec.contracts.events import Event
from streamrec.experiment_report import WITHOUT_FEED, arm_counts, report
from streamrec.feed_store import get_feed, redis_client
from streamrec.kafka import EventProducer
from streamrec.local.live_hits import LiveCount, version_rate, window_start
from streamrec.local.stack import Stack
from streamrec.prom import Scrape, quantile

LATENCY = "streamrec_event_to_feed_seconds"
SCRAPE_EVERY_S = 0.5
CHUNK = 20  # events per pacing step
LIVE_WINDOW = 200  # events with a feed behind the live view's hit rate


@dataclass
class Point:
    """One live-view sample."""

    t: float
    produced: int
    processed: int
    events_per_s: float
    p50_ms: float
    p99_ms: float
    hit_rate: float
    model_version: str
    live: LiveCount = field(default_factory=LiveCount)


@dataclass
class Timeline:
    points: list[Point] = field(default_factory=list)
    produced: int = 0
    delivery_failures: int = 0
    duration_s: float = 0.0
    first_version: str | None = None


def _chunks(events: list[Event], n: int) -> Iterator[list[Event]]:
    for i in range(0, len(events), n):
        yield events[i : i + n]


class DemoRun(Stack):
    """A stack plus the replay of the newer part of the log, the live view and the summary."""

    def __init__(self, settings: Settings, run_dir: Path, replay: list[Event]) -> None:
        super().__init__(settings, run_dir)
        self.replay_events = replay
        self.redis = redis_client(settings.redis, settings.redis_tls)
        self.sample_user = replay[len(replay) // 2].user_id if replay else ""
        self._last_worker = Scrape()
        self._last_trainer = Scrape()

    # ----------------------------------------------------------------- replay
    def replay(self, rate: float, duration: float | None, live: bool, stop: threading.Event) -> Timeline:
        from streamrec.kafka import Pacer

        tl = Timeline()
        s = self.settings
        producer = EventProducer(s.broker, s.topics.events, s.kafka_security)
        pacer = Pacer(rate)
        start = time.monotonic()
        last = (start, 0.0, self._last_worker)
        view = _live_view(live)
        with view as lv:
            for chunk in _chunks(self.replay_events, CHUNK):
                now = time.monotonic()
                if stop.is_set() or (duration is not None and now - start >= duration):
                    break
                for ev in chunk:
                    producer.send(ev.user_id, ev.to_json())
                    pacer.tick()
                tl.produced += len(chunk)
                if time.monotonic() - last[0] >= SCRAPE_EVERY_S:
                    last = self._sample(tl, start, last)
                    if lv is not None:
                        lv.update(self.render(tl))
                    else:
                        _print_point(tl.points[-1])
            report = producer.close()
            tl.delivery_failures = len(report.failed)
            tl.duration_s = time.monotonic() - start
            if lv is not None:
                lv.update(self.render(tl))
        return tl

    def _sample(self, tl: Timeline, start: float, last: tuple[float, float, Scrape]) -> tuple[float, float, Scrape]:
        now = time.monotonic()
        w = self.scrape("worker")
        processed = w.get("streamrec_events_total")
        rate = (processed - last[1]) / max(now - last[0], 1e-9)
        base = last[2].buckets.get(LATENCY)
        live = LiveCount.of(w)
        since = next((p.live for p in reversed(tl.points) if p.live.events <= live.events - LIVE_WINDOW), LiveCount())
        version = self.worker_version(w)
        if tl.first_version is None and version != "-":
            tl.first_version = version
        tl.points.append(
            Point(
                t=now - start,
                produced=tl.produced,
                processed=int(processed),
                events_per_s=rate,
                p50_ms=1000 * quantile(w.buckets.get(LATENCY, []), 0.5, base),
                p99_ms=1000 * quantile(w.buckets.get(LATENCY, []), 0.99, base),
                hit_rate=live.rate_since(since),
                model_version=version,
                live=live,
            )
        )
        self._last_worker = w
        return now, processed, w

    def drain(self, produced: int, timeout_s: float) -> None:
        """Wait until the worker has consumed everything produced (or the timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            w = self.scrape("worker")
            self._last_worker = w
            if w.get("streamrec_events_total") >= produced:
                return
            if "worker" in self.children and not self.children["worker"].alive():
                return
            time.sleep(0.5)

    def settle(self, timeout_s: float) -> None:
        """Give the trainer one more gate on the replay's last examples if it has promoted
        nothing yet (a short replay can end before its first evaluation is due)."""
        if "trainer" not in self.children:
            return

        def gates(t: Scrape) -> float:
            return t.get("streamrec_trainer_promotions_total") + t.get("streamrec_trainer_rejections_total")

        t = self._last_trainer = self.scrape("trainer")
        if t.get("streamrec_trainer_promotions_total") > 0:
            return
        before = gates(t)
        print(f"── waiting up to {timeout_s:.0f}s for the trainer's next gate", flush=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.children["trainer"].alive():
            t = self._last_trainer = self.scrape("trainer")
            if gates(t) > before:
                time.sleep(3.0)  # the worker swaps within a batch or two of the announcement
                self._last_worker = self.scrape("worker")
                return
            time.sleep(0.5)

    # ------------------------------------------------------------------- view
    def render(self, tl: Timeline) -> Any:
        from rich.table import Table

        p = tl.points[-1] if tl.points else None
        t = self._last_trainer = self.scrape("trainer") if "trainer" in self.children else Scrape()
        table = Table(title="streamrec demo (Ctrl-C to stop)", show_header=False, min_width=60)
        table.add_row("events produced / processed", f"{tl.produced:,} / {p.processed if p else 0:,}")
        table.add_row("events/s (worker)", f"{p.events_per_s:,.0f}" if p else "-")
        table.add_row("event→feed latency p50 / p99", f"{_ms(p.p50_ms)} / {_ms(p.p99_ms)}" if p else "-")
        rate = f"{p.hit_rate:.3f}" if p and not math.isnan(p.hit_rate) else "-"
        table.add_row(f"online hit rate@10 (last {LIVE_WINDOW}, the worker's)", rate)
        table.add_row("dead-lettered", f"{self._last_worker.get('streamrec_dlq_total'):,.0f}")
        table.add_row("served model", p.model_version if p else "-")
        table.add_row(
            "trainer promotions / rejections",
            f"{t.get('streamrec_trainer_promotions_total'):.0f} / {t.get('streamrec_trainer_rejections_total'):.0f}",
        )
        feed = get_feed(self.redis, self.sample_user, self.settings.feed_prefix) if self.sample_user else None
        table.add_row(f"feed of user {self.sample_user}", ", ".join(feed.items[:8]) + " …" if feed else "(none yet)")
        return table


def _ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0f} ms"


def _print_point(p: Point) -> None:
    print(
        f"t={p.t:6.1f}s produced={p.produced} processed={p.processed} {p.events_per_s:,.0f} ev/s "
        f"p50={_ms(p.p50_ms)} p99={_ms(p.p99_ms)} hit@10={p.hit_rate:.3f} model={p.model_version}",
        flush=True,
    )


def _live_view(live: bool) -> Any:
    if not live:
        return nullcontext(None)
    from rich.live import Live

    return Live(refresh_per_second=4, transient=False)


def summary_dict(demo: DemoRun, tl: Timeline, exit_codes: dict[str, int]) -> dict[str, Any]:
    w = demo._last_worker
    t = demo._last_trainer
    versions = [r.version for r in demo.registry().list()]
    final = LiveCount.of(w)
    latest = final.rate_since(window_start([p.live for p in tl.points], final, 0.25))
    frozen_hits, frozen_n = version_rate(w, tl.first_version) if tl.first_version else (0.0, 0.0)
    buckets = w.buckets.get(LATENCY, [])
    out: dict[str, Any] = {
        "events_produced": tl.produced,
        "events_processed": int(w.get("streamrec_events_total")),
        "delivery_failures": tl.delivery_failures,
        "dlq": int(w.get("streamrec_dlq_total")),
        "feeds_written": int(w.get("streamrec_feeds_written_total")),
        "feeds_refused_as_older": int(w.get("streamrec_feeds_stale_total")),
        "batches": int(w.get("streamrec_batch_size_count")),
        "duplicates": int(w.get("streamrec_duplicates_total")),
        "model_versions": versions,
        "promotions": int(t.get("streamrec_trainer_promotions_total")),
        "rejections": int(t.get("streamrec_trainer_rejections_total")),
        "latency_ms": {"p50": _finite(1000 * quantile(buckets, 0.5)), "p99": _finite(1000 * quantile(buckets, 0.99))},
        "online_hit_rate_at_10": {
            "frozen_model_window": round(frozen_hits / frozen_n, 4) if frozen_n else None,
            "latest_window": _rounded(latest),
            "events_checked": int(final.events),
            "events_without_feed": int(w.get(WITHOUT_FEED)),
        },
        "replay_s": round(tl.duration_s, 1),
        "exit_codes": exit_codes,
    }
    exp = demo.settings.experiment
    if exp.parsed:  # what `streamrec experiments report` prints, from the worker's last scrape
        out["experiment"] = report(arm_counts([w]), exp.control_name, exp.parsed)
    fb = t.buckets.get("streamrec_trainer_freshness_seconds", [])
    out["freshness_s"] = {"p50": _finite(quantile(fb, 0.5)), "p90": _finite(quantile(fb, 0.9))}
    return out


def _rounded(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


def _finite(x: float) -> float | None:
    """JSON has no NaN: a quantile of no observations is null."""
    return None if math.isnan(x) else round(x, 1)
