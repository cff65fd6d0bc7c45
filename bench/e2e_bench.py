"""End-to-end benchmark: embedded broker + Redis, one worker child process, a pacing producer.

Every figure comes from the worker's own Prometheus endpoint (``streamrec_events_total``,
``streamrec_event_to_feed_seconds``, ``streamrec_score_seconds``, ``streamrec_batch_size``),
read as the difference of two scrapes around each measurement window, so warm-up and the
drain after a load step are not mixed in. The latency is the worker's: from the Kafka record
timestamp (set by the producer at send) to the feed written to Redis.

* ``loads``: a fixed offered rate for ``window_s`` seconds each (after ``warm_s`` of the same
  rate), then a drain: events/s achieved, latency p50/p95/p99, mean batch size, and the share
  of wall time the worker spent scoring.
* ``saturation``: a backlog produced as fast as the producer can, then consumed; events/s is
  measured over the span in which the worker had a backlog (the producer's own CPU shares the
  2 cores during the first part: both rates are reported).
* ``timeline``: the worker's events/s every ``tick_s`` at the first load, which shows stalls
  (windows with 0 events while events are waiting).

The model is a randomly initialised tower of the default shape (d=128, 2 layers, L=50)
exported through the normal exporter: the cost per event does not depend on training.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamrec.config import Settings
from streamrec.contracts.events import Event
from streamrec.kafka import EventProducer
from streamrec.local.stack import Stack, local_services
from streamrec.prom import Scrape, quantile

LATENCY = "streamrec_event_to_feed_seconds"
SCORE = "streamrec_score_seconds"
BATCH = "streamrec_batch_size"
USERS = "streamrec_batch_users"
EVENTS = "streamrec_events_total"
PROVIDER = "streamrec_worker_provider_info"


@dataclass(frozen=True)
class E2EConfig:
    loads: tuple[int, ...] = (250, 1000, 4000)
    warm_s: float = 3.0
    window_s: float = 15.0
    saturation_events: int = 40_000
    n_users: int = 10_000
    n_items: int = 50_000
    tick_s: float = 0.25
    drain_timeout_s: float = 120.0
    worker_env: tuple[tuple[str, str], ...] = ()  # extra STREAMREC_WORKER__* overrides for the child
    # faust hard-codes aiokafka's fetch_max_wait_ms=1500 for the worker's consumer, and Tansu holds
    # every fetch for about half of it even when records are waiting. A value here goes to the
    # worker's own setting when it has one, else is patched into the worker child (a
    # sitecustomize on its PYTHONPATH), to compare the consume path with and without the fix.
    fetch_max_wait_ms: int | None = None
    profile: bool = False  # py-spy the worker at the profile load and at saturation
    profile_rate: int = 1000

    @classmethod
    def quick(cls) -> E2EConfig:
        return cls(loads=(250, 1000), warm_s=2.0, window_s=6.0, saturation_events=8_000, n_items=10_000)


FETCH_PATCH = """# written by streamrec bench: the proposed fix, applied to the worker child only
from faust.transport.drivers import aiokafka as _drv

_create = _drv.AIOKafkaConsumerThread._create_worker_consumer


def _create_worker_consumer(self, transport):
    consumer = _create(self, transport)
    consumer._fetch_max_wait_ms = {ms}  # read by AIOKafkaConsumer.start() when it builds the Fetcher
    return consumer


_drv.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer
"""


# ------------------------------------------------------------------------------- workload
class EventSource:
    """Synthetic events over ``n_users`` users and the exported catalogue; item popularity is
    Zipf-like so sessions repeat items the way real ones do."""

    def __init__(self, n_users: int, n_items: int, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.n_users, self.n_items = n_users, n_items
        self.seq = 0
        self.run = f"{seed}-{os.getpid()}-{int(time.time())}"

    def next(self) -> Event:
        self.seq += 1
        user = self.rng.randrange(self.n_users)
        item = min(int(self.rng.paretovariate(1.1)) - 1, self.n_items - 1)
        return Event(f"{self.run}-{self.seq}", f"u{user}", f"i{item}", "click", time.time())


def export_synthetic_model(settings: Settings, n_items: int, k: int, session_length: int) -> str:
    """A randomly initialised model of the default shape, exported to the stack's registry."""
    from streamrec.bench.model_bench import synthetic_model
    from streamrec.export.exporter import export_model
    from streamrec.serving.registry import open_registry

    model, ids, matrix = synthetic_model(n_items, session_length)
    registry = open_registry(settings.registry.url, settings.data_dir, settings.redis_tls)
    return export_model(model.session, ids, matrix, registry, k=k, session_length=session_length).ref.version


# ------------------------------------------------------------------------------- windows
def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process (the producer) and each child it
    started (broker, Redis, worker), by role: where the 2 cores go, not just the worker's share."""
    tick = os.sysconf("SC_CLK_TCK")

    def read(pid: int) -> tuple[str, float] | None:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        name, fields = raw[raw.index("(") + 1 : raw.rindex(")")], raw[raw.rindex(")") + 2 :].split()
        return name, (int(fields[11]) + int(fields[12])) / tick

    children = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(OSError):
            children |= {int(p) for p in (task / "children").read_text().split()}
    out = {"producer (bench)": read(os.getpid())[1]}  # type: ignore[index]
    for pid in children:
        got = read(pid)
        if got is not None:
            name, secs = got
            role = "broker" if name.startswith("tansu") else "redis" if name.startswith("redis") else "worker"
            out[role] = out.get(role, 0.0) + secs
    return out


def cores_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    return {role: (after[role] - before.get(role, 0.0)) / seconds for role in after} if seconds > 0 else {}


def window(before: Scrape, after: Scrape, seconds: float) -> dict[str, Any]:
    """What the worker measured between two scrapes."""

    def delta(name: str) -> float:
        return after.get(name) - before.get(name)

    lat = after.buckets.get(LATENCY, [])
    base = before.buckets.get(LATENCY)
    events = delta(EVENTS)
    batches = delta(f"{BATCH}_count")
    score_s = delta(f"{SCORE}_sum")
    return {
        "seconds": seconds,
        "events": int(events),
        "events_per_s": events / seconds if seconds > 0 else math.nan,
        "latency_ms": {f"p{int(q * 100)}": 1e3 * quantile(lat, q, base) for q in (0.5, 0.95, 0.99)},
        "latency_mean_ms": 1e3 * delta(f"{LATENCY}_sum") / max(delta(f"{LATENCY}_count"), 1.0),
        "batches": int(batches),
        "batch_mean_events": events / batches if batches else math.nan,
        "batch_mean_users": delta(f"{USERS}_sum") / batches if batches else math.nan,
        "score_ms_per_batch": 1e3 * score_s / batches if batches else math.nan,
        "score_share_of_wall": score_s / seconds if seconds > 0 else math.nan,
        "feeds_written": int(delta("streamrec_feeds_written_total")),
        "dlq": int(delta("streamrec_dlq_total")),
    }


class Bench(Stack):
    """A stack with a worker and a producer, and the measurement loops."""

    def __init__(self, settings: Settings, run_dir: Path, cfg: E2EConfig) -> None:
        super().__init__(settings, run_dir)
        self.cfg = cfg
        self.source = EventSource(cfg.n_users, cfg.n_items)
        self.producer: EventProducer | None = None
        self.produced = 0

    def child_env(self) -> dict[str, str]:
        env = {**super().child_env(), **dict(self.cfg.worker_env)}
        if self.cfg.fetch_max_wait_ms is not None and "fetch_max_wait_ms" in type(self.settings.worker).model_fields:
            env["STREAMREC_WORKER__FETCH_MAX_WAIT_MS"] = str(int(self.cfg.fetch_max_wait_ms))
        elif self.cfg.fetch_max_wait_ms is not None:
            patch_dir = self.run_dir / "fetch-patch"
            patch_dir.mkdir(parents=True, exist_ok=True)
            (patch_dir / "sitecustomize.py").write_text(FETCH_PATCH.format(ms=int(self.cfg.fetch_max_wait_ms)))
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(patch_dir), os.environ.get("PYTHONPATH", "")]))
        return env

    def worker_pid(self) -> int:
        return self.children["worker"].proc.pid

    def open_producer(self) -> EventProducer:
        s = self.settings
        self.producer = EventProducer(s.broker, s.topics.events, s.kafka_security)
        return self.producer

    def produce(self, rate: float, seconds: float, ticks: list[tuple[float, float, int]] | None = None) -> float:
        """Send at ``rate`` events/s (0 = flat out) for ``seconds``; returns the rate achieved.
        With ``ticks``, scrape the worker every ``tick_s`` and append (t, events_total, produced)."""
        assert self.producer is not None
        start = time.monotonic()
        sent = 0
        next_tick = start
        while True:
            now = time.monotonic()
            if now - start >= seconds:
                break
            if ticks is not None and now >= next_tick:
                ticks.append((now - start, self.scrape("worker").get(EVENTS), self.produced))
                next_tick += self.cfg.tick_s
            due = int((now - start) * rate) if rate > 0 else sent + 200
            for _ in range(max(0, due - sent)):
                ev = self.source.next()
                self.producer.send(ev.user_id, ev.to_json())
                sent += 1
                self.produced += 1
            if rate > 0:
                time.sleep(0.002)
        return sent / (time.monotonic() - start)

    def produce_count(self, n: int) -> float:
        """Send ``n`` events as fast as possible; returns seconds taken (to the last ack)."""
        assert self.producer is not None
        t0 = time.monotonic()
        for _ in range(n):
            ev = self.source.next()
            self.producer.send(ev.user_id, ev.to_json())
        self.producer.flush()
        self.produced += n
        return time.monotonic() - t0

    def drain(self) -> tuple[bool, Scrape]:
        """Wait until the worker consumed everything produced; returns (drained, last scrape)."""
        assert self.producer is not None
        self.producer.flush()
        deadline = time.monotonic() + self.cfg.drain_timeout_s
        w = self.scrape("worker")
        while w.get(EVENTS) < self.produced and time.monotonic() < deadline:
            if not self.children["worker"].alive():
                child = self.children["worker"]
                raise RuntimeError(f"the worker died (exit {child.proc.returncode}); its log ends:\n{child.log_tail()}")
            time.sleep(0.2)
            w = self.scrape("worker")
        return w.get(EVENTS) >= self.produced, w

    # ------------------------------------------------------------------- measurements
    def fixed_load(self, rate: int, ticks: list[tuple[float, float, int]] | None = None) -> dict[str, Any]:
        self.produce(rate, self.cfg.warm_s)
        before, t0 = self.scrape("worker"), time.monotonic()
        with self.profiling(self.cfg.profile and rate == self.cfg.profile_rate, self.cfg.window_s) as prof:
            offered = self.produce(rate, self.cfg.window_s, ticks)
        after, t1 = self.scrape("worker"), time.monotonic()
        out = window(before, after, t1 - t0)
        if prof:
            out["profile"] = prof
        drained, _ = self.drain()
        out |= {"offered_per_s": rate, "produced_per_s": offered, "drained": drained}
        return out

    def saturation(self) -> dict[str, Any]:
        """A backlog of ``saturation_events``: the worker's events/s while it had one."""
        start = self.scrape("worker")
        base = start.get(EVENTS)
        target = base + self.cfg.saturation_events
        t0 = time.monotonic()
        produce_s = self.produce_count(self.cfg.saturation_events)
        mid = self.scrape("worker")
        t_mid, cpu_mid = time.monotonic(), cpu_seconds()
        # the backlog left drains in roughly (left / ~2k per s): profile most of that span
        left = self.produced - mid.get(EVENTS)
        with self.profiling(self.cfg.profile and left > 4000, max(1.0, 0.7 * left / 2500)) as prof:
            drained, end = self.drain()
        t_end, cpu_end = time.monotonic(), cpu_seconds()
        total_s = t_end - t0
        done = end.get(EVENTS) - base
        # after the producer stopped the worker has the CPU to itself: the cleaner figure.
        alone = window(mid, end, t_end - t_mid) if end.get(EVENTS) > mid.get(EVENTS) + 100 else None
        if alone is not None:
            alone["cores"] = cores_used(cpu_mid, cpu_end, t_end - t_mid)
        return {
            "events": int(done),
            "drained": drained and end.get(EVENTS) >= target,
            "producer_events_per_s": self.cfg.saturation_events / produce_s if produce_s > 0 else math.nan,
            "events_per_s_overall": done / total_s if total_s > 0 else math.nan,
            "while_producing": window(start, mid, t_mid - t0),
            "worker_alone": alone,
            **({"profile": prof} if prof else {}),
        }

    @contextlib.contextmanager
    def profiling(self, enabled: bool, seconds: float) -> Iterator[dict[str, Any]]:
        """py-spy the worker in a thread while the body runs; the dict is filled on exit."""
        out: dict[str, Any] = {}
        if not enabled:
            yield out
            return
        from streamrec.bench.profile import profile_worker

        pid = self.worker_pid()
        thread = threading.Thread(target=lambda: out.update(profile_worker(pid, seconds)), daemon=True)
        thread.start()
        try:
            yield out
        finally:
            thread.join(seconds + 40)


def stall_summary(ticks: list[tuple[float, float, int]], tick_s: float) -> dict[str, Any]:
    """Windows in which the worker processed nothing while events were waiting."""
    rows = []
    stalls = []
    for (t0, e0, _p0), (t1, e1, _p1) in itertools.pairwise(ticks):
        rows.append({"t": round(t1, 3), "events_per_s": (e1 - e0) / max(t1 - t0, 1e-9), "processed": int(e1)})
        if e1 == e0:
            stalls.append(round(t1, 3))
    zero_runs = []
    run: list[float] = []
    for t in stalls:
        if run and t - run[-1] > tick_s * 1.5:
            zero_runs.append(run)
            run = []
        run.append(t)
    if run:
        zero_runs.append(run)
    starts = [r[0] for r in zero_runs]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    return {
        "tick_s": tick_s,
        "ticks": rows,
        "zero_ticks": len(stalls),
        "zero_share": len(stalls) / max(len(rows), 1),
        "stall_runs": len(zero_runs),
        "stall_period_s": sorted(gaps)[len(gaps) // 2] if gaps else None,
        "longest_stall_s": max((r[-1] - r[0] + tick_s for r in zero_runs), default=0.0),
    }


@contextlib.contextmanager
def running_stack(settings: Settings, cfg: E2EConfig, run_dir: Path | None = None) -> Iterator[Bench]:
    tmp = None
    if run_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="streamrec-bench-")
        run_dir = Path(tmp.name)
    settings = settings.model_copy(update={"data_dir": run_dir / "data"})
    try:
        with local_services(settings, run_dir) as s:
            bench = Bench(s, run_dir, cfg)
            bench.prepare_topics()
            print(f"── exporting a synthetic model ({cfg.n_items:,} items)", flush=True)
            export_synthetic_model(s, cfg.n_items, s.k, s.session_length)
            bench.announce_latest()
            try:
                bench.start_worker()
                bench.open_producer()
                yield bench
            finally:
                if bench.producer is not None:
                    bench.producer.close()
                bench.stop_children()
    finally:
        if tmp is not None:
            tmp.cleanup()


def run_e2e_bench(settings: Settings, cfg: E2EConfig, run_dir: Path | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"config": _jsonable(cfg), "loads": []}
    result["worker_fetch_max_wait_ms"] = effective_fetch_wait(settings, cfg)
    with running_stack(settings, cfg, run_dir) as bench:
        # first model call, first group join and the first feeds are not part of any window
        bench.produce(100, 2.0)
        bench.drain()
        for i, rate in enumerate(cfg.loads):
            ticks: list[tuple[float, float, int]] | None = [] if i == 0 else None
            print(f"── e2e: {rate:,} events/s offered for {cfg.warm_s + cfg.window_s:.0f} s", flush=True)
            row = bench.fixed_load(rate, ticks)
            row["loadavg"] = os.getloadavg()
            result["loads"].append(row)
            if ticks is not None:
                result["timeline"] = {"offered_per_s": rate, **stall_summary(ticks, cfg.tick_s)}
            print(f"   {_brief(row)}", flush=True)
        print(f"── e2e: saturation, a backlog of {cfg.saturation_events:,} events", flush=True)
        result["saturation"] = bench.saturation()
        result["saturation"]["loadavg"] = os.getloadavg()
        sat = result["saturation"]
        print(f"   {sat['events_per_s_overall']:,.0f} events/s overall", flush=True)
        result["worker_provider"] = worker_provider(bench.scrape("worker"))
    alone = sat.get("worker_alone") or {}
    result["events_per_s"] = max(sat["events_per_s_overall"], alone.get("events_per_s", 0.0) or 0.0)
    result["latency_ms"] = {str(r["offered_per_s"]): r["latency_ms"] for r in result["loads"]}
    return result


def worker_provider(scrape: Scrape) -> dict[str, str]:
    """What the worker scored on and why: the labels of its provider metric ({} without one)."""
    return next((labels for labels, value in scrape.labelled.get(PROVIDER, []) if value == 1), {})


def effective_fetch_wait(settings: Settings, cfg: E2EConfig) -> int:
    """What the worker's consumer uses: the bench's override, else the worker's setting, else
    faust's hard-coded 1500 ms (workers from before the setting existed)."""
    if cfg.fetch_max_wait_ms is not None:
        return int(cfg.fetch_max_wait_ms)
    return int(getattr(settings.worker, "fetch_max_wait_ms", 1500))


def _brief(row: dict[str, Any]) -> str:
    lat = row["latency_ms"]
    return (
        f"{row['events_per_s']:,.0f} ev/s, p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, p99 {lat['p99']:.0f} ms, "
        f"{row['batch_mean_events']:.1f} events/batch, scoring {row['score_ms_per_batch']:.1f} ms/batch"
    )


def _jsonable(cfg: E2EConfig) -> dict[str, Any]:
    from dataclasses import asdict

    out = asdict(cfg)
    out["worker_env"] = dict(cfg.worker_env)
    return out
