"""The soak's pieces that are not the run itself (:mod:`streamrec.bench.soak`): its settings
and workload, the producer's delivery account, and the readers of RSS and of the sessions."""

from __future__ import annotations

import contextlib
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamrec.config import Settings

RSS_EVERY_S = 5.0  # the soak's RSS sampling period


@dataclass(frozen=True)
class SoakConfig:
    events: int = 500_000
    rate: float = 500.0
    per_user: int = 20
    n_items: int = 20_000
    kill_every_s: float = 60.0
    redis_restart_at: float = 0.35  # share of the planned run; moved to half-way between two kills
    broker_restart_at: float = 0.65
    down_s: float = 3.0  # how long Redis and the broker stay down
    caught_up_s: float = 2.0  # recovered: lag under this many seconds of events
    sample_s: float = 0.5
    drain_timeout_s: float = 600.0

    @property
    def users(self) -> int:
        return math.ceil(self.events / self.per_user)

    @property
    def planned_s(self) -> float:
        return self.events / self.rate

    def fault_plan(self) -> list[tuple[float, str]]:
        """(second of the run, fault): a worker kill every ``kill_every_s``, and the Redis and
        broker restarts half-way between two kills, so each recovery is measured alone."""
        every = self.kill_every_s
        kills = [(every * i, "worker_sigkill") for i in range(1, int(self.planned_s // every) + 1)]
        others = [
            (every * max(0, round(self.planned_s * at / every)) + every / 2, kind)
            for at, kind in ((self.redis_restart_at, "redis_restart"), (self.broker_restart_at, "broker_restart"))
        ]
        return sorted(f for f in kills + others if f[0] < self.planned_s)


def item_of(cfg: SoakConfig, user: int, step: int) -> str:
    return f"i{(user * 7919 + step * 104_729) % cfg.n_items}"


class Delivered:
    """What the broker acknowledged: per-partition end offset, the events it holds, failures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.end: dict[int, int] = {}
        self.ok = 0
        self.failed: list[int] = []

    def success(self, meta: Any) -> None:
        with self.lock:
            self.ok += 1
            self.end[meta.partition] = max(self.end.get(meta.partition, 0), meta.offset + 1)

    def failure(self, index: int) -> None:
        with self.lock:
            self.failed.append(index)


def recoveries(
    faults: list[dict[str, Any]], ready: list[tuple[float, bool]], lag: list[tuple[float, int]], threshold: float
) -> list[dict[str, Any]]:
    """Per fault, seconds from the fault until the worker was ready and the lag was at most
    ``threshold`` events again (None: not within the run), and the lag's peak meanwhile."""
    out = []
    for f in faults:
        back = f["at_s"] + f["restarted_after_s"]
        ready_at = next((t for t, ok in ready if t >= back and ok), None)
        caught = None
        if ready_at is not None:
            caught = next((t for t, n in lag if t >= ready_at and n <= threshold), None)
        peak = max((n for t, n in lag if f["at_s"] <= t <= (caught or math.inf)), default=None)
        out.append(
            f
            | {
                "ready_after_s": None if ready_at is None else round(ready_at - f["at_s"], 2),
                "recovered_after_s": None if caught is None else round(caught - f["at_s"], 2),
                "peak_lag": peak,
            }
        )
    return out


def stale_feeds(settings: Settings, last_event: dict[str, str]) -> int:
    """Users whose feed in Redis was not computed after their last event."""
    from streamrec.feed_store import get_feed, redis_client

    client = redis_client(settings.redis)
    try:
        return sum(
            1
            for user, ev in last_event.items()
            if (f := get_feed(client, user, settings.feed_prefix)) is None or f.event_id != ev
        )
    finally:
        client.close()


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process, from /proc (Linux); None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_summary(samples: list[tuple[float, str, int, float]], worker_before_kill: list[tuple[float, float]]) -> dict:
    """Per process: RSS at the first sample, at minute 5, at the end, and the growth from minute
    5 to the end. The worker: its RSS just before each kill (each incarnation at the same age),
    growth from the first kill after minute 5 to the last."""
    out: dict[str, Any] = {}
    for name in sorted({s[1] for s in samples} - {"worker"}):
        rows = [(t, mb) for t, n, _pid, mb in samples if n == name]
        at5 = next((mb for t, mb in rows if t >= 300), None)
        out[name] = {
            "start": round(rows[0][1], 1),
            "minute_5": None if at5 is None else round(at5, 1),
            "end": round(rows[-1][1], 1),
            "growth_from_minute_5_pct": None if at5 is None else round(100 * (rows[-1][1] / at5 - 1), 1),
        }
    later = [mb for t, mb in worker_before_kill if t >= 300]
    out["worker"] = {
        "before_each_kill": [round(mb, 1) for _t, mb in worker_before_kill],
        "growth_from_minute_5_pct": round(100 * (later[-1] / later[0] - 1), 1) if len(later) >= 2 else None,
    }
    return out


def read_sessions(settings: Settings, idle_s: float = 10.0) -> dict[str, list[str]]:
    """Every user's last session items from the table's changelog, read from the beginning
    until each partition's high watermark (or ``idle_s`` without a record)."""
    from kafka import KafkaConsumer, TopicPartition

    topic = f"{settings.worker.app_id}-sessions-changelog"
    consumer = KafkaConsumer(
        bootstrap_servers=settings.broker, enable_auto_commit=False, consumer_timeout_ms=int(idle_s * 1000)
    )
    last: dict[bytes, bytes | None] = {}
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        for rec in consumer:
            last[rec.key] = rec.value
            if all((hw := consumer.highwater(tp)) is not None and consumer.position(tp) >= hw for tp in tps):
                break
    finally:
        consumer.close()
    out = {}
    for key, value in last.items():
        if value is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                out[json.loads(key)] = json.loads(value)["i"]
    return out


def print_soak(result: dict[str, Any]) -> None:
    r = result
    print(
        f"soak: {r['events_delivered']:,} events delivered in {r['run_s']:.0f}s; lost {r['lost_events']}, "
        f"applied twice {r['applied_twice']}, out of order {r['users_out_of_order']} users; "
        f"max lag {r['max_lag']:,}; worst recovery {r['worst_recovery_s']}s"
    )
    for f in r["faults"]:
        print(f"  {f['at_s']:7.1f}s {f['kind']:<15} ready {f['ready_after_s']}s, recovered {f['recovered_after_s']}s")
    for name, rss in r["rss_mb"].items():
        print(f"  RSS {name}: {rss}")
    print(f"targets: {r['targets']}")
