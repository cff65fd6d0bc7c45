"""Soak under faults (``streamrec bench --soak``; not part of CI): a long steady stream into the
embedded stack on the durable broker while the worker is SIGKILLed every ``kill_every_s`` and
Redis and the broker are each restarted once, then an exact account of what the worker did.

* Workload: ``events`` round-robin over ``events / per_user`` users (``per_user`` <= the session
  length), items from (user, step): a lost, repeated or reordered event shows in the session.
* Lost and applied twice: after the stream, the worker is stopped and each user's last session
  is read from the table's changelog (the durable copy) and compared with what was delivered.
* Lag: what the producer had delivered (its acknowledged offsets) minus the group's committed
  offsets, sampled from outside the worker, so it is measured while the worker is down too.
* Recovery after a fault: from the fault until the worker is ready again and the lag is back
  under ``caught_up_s`` seconds of events.
* RSS of every process, sampled; the worker's per incarnation, just before each kill (same age).

The supervisor's part (restart the worker after a kill, as Kubernetes would) is played here.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

from streamrec.bench.soak_parts import (
    RSS_EVERY_S,
    Delivered,
    SoakConfig,
    item_of,
    read_sessions,
    recoveries,
    rss_mb,
    rss_summary,
    stale_feeds,
)
from streamrec.config import Settings
from streamrec.errors import UserError
from streamrec.kafka import Pacer, make_producer
from streamrec.local.services import Service, ServiceError, embedded_services
from streamrec.local.stack import Stack, pointed_at
from streamrec.local.supervisor import http_get


class Soak:
    """The run: a producer thread, a lag sampler thread, and the fault loop in the caller."""

    def __init__(self, stack: Stack, services: dict[str, Service], cfg: SoakConfig) -> None:
        self.stack, self.services, self.cfg = stack, services, cfg
        self.settings: Settings = stack.settings
        self.delivered = Delivered()
        self.sent = 0
        self.t0 = 0.0
        self.done_producing = threading.Event()
        self.stop_sampling = threading.Event()
        self.lag: list[tuple[float, int]] = []
        self.ready: list[tuple[float, bool]] = []
        self.rss: list[tuple[float, str, int, float]] = []  # (t, process, pid, MB)
        self.faults: list[dict[str, Any]] = []
        self.worker_rss_before_kill: list[tuple[float, float]] = []
        self.incarnation = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    # ----------------------------------------------------------------------- threads
    def produce(self) -> None:
        cfg = self.cfg
        # no idempotence: Tansu acknowledges an idempotent retry of a batch it lost in a restart
        # (tests/reliability/test_broker_restart.py); plain retries in order, copies deduplicated
        producer = make_producer(
            self.settings.broker,
            self.settings.kafka_security,
            enable_idempotence=False,
            max_in_flight_requests_per_connection=1,
        )
        pacer = Pacer(cfg.rate)
        topic = self.settings.topics.events
        for i in range(cfg.events):
            user, step = i % cfg.users, i // cfg.users
            event = {"event_id": f"soak-{i}", "user_id": f"u{user}", "item_id": item_of(cfg, user, step), "ts": 0}
            event["ts"] = time.time()
            fut = producer.send(topic, key=f"u{user}", value=event)
            fut.add_callback(self.delivered.success)
            fut.add_errback(lambda _exc, i=i: self.delivered.failure(i))
            self.sent += 1
            pacer.tick()
        producer.flush()
        producer.close()
        self.done_producing.set()

    def sample_lag(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        s = self.settings
        consumer = KafkaConsumer(bootstrap_servers=s.broker, group_id=s.worker.app_id, enable_auto_commit=False)
        tps = [TopicPartition(s.topics.events, p) for p in range(s.partitions)]
        try:
            while not self.stop_sampling.wait(self.cfg.sample_s):
                try:
                    committed = {tp.partition: consumer.committed(tp) or 0 for tp in tps}
                except Exception:  # the broker is down: no sample
                    continue
                with self.delivered.lock:
                    end = dict(self.delivered.end)
                self.lag.append((self.now(), sum(max(0, e - committed.get(p, 0)) for p, e in end.items())))
        finally:
            consumer.close()

    # ----------------------------------------------------------------------- probes
    def worker_ready(self) -> bool:
        return http_get(f"http://127.0.0.1:{self.settings.worker.web_port}/readyz", timeout_s=1.0)[0] == 200

    def pids(self) -> dict[str, int]:
        out = {name: svc.proc.pid for name, svc in self.services.items()}
        out["worker"] = self.stack.children["worker"].proc.pid
        out["soak (producer)"] = os.getpid()
        return out

    def sample_rss(self) -> None:
        t = self.now()
        for name, pid in self.pids().items():
            mb = rss_mb(pid)
            if mb is not None:
                self.rss.append((t, name, pid, mb))

    # ----------------------------------------------------------------------- faults
    def start_worker(self) -> None:
        """Start the next incarnation; one slower than the stack's 120 s to get ready is still
        measured (by the readiness samples), not given up on."""
        self.incarnation += 1
        try:
            self.stack.start_worker(log_name=f"worker-{self.incarnation}")
        except ServiceError:
            if not self.stack.children["worker"].alive():
                raise
            print(f"  worker-{self.incarnation} not ready after 120 s; still waiting", flush=True)

    def inject(self, kind: str) -> dict[str, Any]:
        t = self.now()
        lag_before = self.lag[-1][1] if self.lag else None
        if kind == "worker_sigkill":
            child = self.stack.children["worker"]
            mb = rss_mb(child.proc.pid)
            if mb is not None:
                self.worker_rss_before_kill.append((t, mb))
            child.proc.send_signal(signal.SIGKILL)
            child.proc.wait()
            self.start_worker()  # the supervisor's part: Kubernetes restarts a killed pod
        elif kind == "redis_restart":
            self.services["redis"].restart(down_s=self.cfg.down_s)
        elif kind == "broker_restart":
            self.services["broker"].restart(down_s=self.cfg.down_s)
        fault = {"kind": kind, "at_s": round(t, 2), "restarted_after_s": round(self.now() - t, 2)}
        fault["lag_before"] = lag_before
        print(f"  {self.now():7.1f}s {kind}: back after {fault['restarted_after_s']:.1f}s", flush=True)
        return fault

    # ----------------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        self.start_worker()
        self.t0 = time.monotonic()
        producer = threading.Thread(target=self.produce, name="soak-producer", daemon=True)
        sampler = threading.Thread(target=self.sample_lag, name="soak-lag", daemon=True)
        producer.start()
        sampler.start()
        plan = cfg.fault_plan()
        print(f"── soak: {cfg.events:,} events at {cfg.rate:g}/s (~{cfg.planned_s / 60:.0f} min), faults {plan}")
        next_rss = next_log = 0.0
        while not self.done_producing.is_set() or plan:
            t = self.now()
            if plan and t >= plan[0][0]:
                self.faults.append(self.inject(plan.pop(0)[1]))
                continue
            self.ready.append((t, self.worker_ready()))
            if t >= next_rss:
                self.sample_rss()
                next_rss = t + RSS_EVERY_S
            if t >= next_log:
                lag = self.lag[-1][1] if self.lag else 0
                print(f"  {t:7.1f}s sent {self.sent:,} delivered {self.delivered.ok:,} lag {lag:,}", flush=True)
                next_log = t + 30.0
            if self.done_producing.is_set() and plan:
                plan = []  # the stream ended before the plan (a slow producer): no fault after it
            time.sleep(cfg.sample_s)
        producer.join()
        drained_s = self.drain()
        self.sample_rss()
        self.stop_sampling.set()
        sampler.join(10)
        end_s = self.now()
        code = self.stack.children["worker"].stop()
        check = self.check()
        return self.summary(check, drained_s, end_s, code)

    def drain(self) -> float | None:
        """Seconds after the last delivery until the group committed every delivered event."""
        t_end = self.now()
        deadline = time.monotonic() + self.cfg.drain_timeout_s
        while time.monotonic() < deadline:
            if self.lag and self.lag[-1][0] > t_end and self.lag[-1][1] == 0:
                return self.lag[-1][0] - t_end
            time.sleep(self.cfg.sample_s)
        return None

    # ----------------------------------------------------------------------- account
    def check(self) -> dict[str, Any]:
        """Each user's last session (the changelog) against the events the broker acknowledged."""
        cfg = self.cfg
        failed = set(self.delivered.failed)
        want: dict[str, list[str]] = {}
        last_event: dict[str, str] = {}
        for i in range(cfg.events):
            user, step = i % cfg.users, i // cfg.users
            if i not in failed:
                want.setdefault(f"u{user}", []).append(item_of(cfg, user, step))
                last_event[f"u{user}"] = f"soak-{i}"
        t = time.monotonic()
        got = read_sessions(self.settings)
        print(f"  read {len(got):,} sessions from the changelog in {time.monotonic() - t:.0f}s", flush=True)
        lost = twice = reordered = 0
        for user, items in want.items():
            have = got.get(user, [])
            w, g = Counter(items), Counter(have)
            lost += sum((w - g).values())
            twice += sum((g - w).values())
            reordered += int(have != items and w == g)
        return {
            "users": len(want),
            "events_checked": sum(len(v) for v in want.values()),
            "lost_events": lost,
            "applied_twice": twice,
            "users_out_of_order": reordered,
            "feeds_not_at_last_event": stale_feeds(self.settings, last_event),
        }

    def summary(self, check: dict[str, Any], drained_s: float | None, end_s: float, exit_code: int) -> dict[str, Any]:
        cfg = self.cfg
        faults = recoveries(self.faults, self.ready, self.lag, self.cfg.rate * self.cfg.caught_up_s)
        rss = rss_summary(self.rss, self.worker_rss_before_kill)
        recov = [f["recovered_after_s"] for f in faults]
        worst = max((r for r in recov if r is not None), default=None)
        growth = {k: v.get("growth_from_minute_5_pct") for k, v in rss.items()}
        targets = {
            "lost_events_0": check["lost_events"] == 0,
            "applied_twice_0": check["applied_twice"] == 0,
            "rss_growth_below_20_pct": all(g is not None and g < 20 for g in growth.values()),
            "every_recovery_below_30_s": all(r is not None and r < 30 for r in recov),
        }
        return {
            "config": asdict(cfg) | {"users": cfg.users, "store": self.settings.worker.store, "durable_broker": True},
            "run_s": round(end_s, 1),
            "events_sent": self.sent,
            "events_delivered": self.delivered.ok,
            "delivery_failures": len(self.delivered.failed),
            "drained_after_last_send_s": None if drained_s is None else round(drained_s, 1),
            **check,
            "max_lag": max((lag for _, lag in self.lag), default=None),
            "lag_threshold_caught_up": cfg.rate * cfg.caught_up_s,
            "faults": faults,
            "worst_recovery_s": worst,
            "worker_incarnations": self.incarnation,
            "last_worker_exit_code": exit_code,
            "rss_mb": rss,
            "targets": targets | {"all": all(targets.values())},
        }


def run_soak(settings: Settings, cfg: SoakConfig) -> dict[str, Any]:
    """Start the durable stack in a fresh directory, export a model, run the soak."""
    from streamrec.bench.e2e_bench import export_synthetic_model
    from streamrec.bench.report import machine

    if settings.broker or settings.redis:
        raise UserError("the soak starts (and restarts) its own broker and Redis: leave --broker and --redis empty")
    if cfg.per_user > settings.session_length:
        raise UserError(f"events per user ({cfg.per_user}) must fit in a session (--session-length)")
    run_dir = (settings.data_dir / "soak" / time.strftime("%Y%m%dT%H%M%S")).resolve()
    info = machine()
    with embedded_services(workdir=run_dir / "services", durable=True) as svc:
        settings = pointed_at(settings.model_copy(update={"data_dir": run_dir}), svc)
        stack = Stack(settings, run_dir)
        stack.prepare_topics()
        export_synthetic_model(settings, cfg.n_items, settings.k, settings.session_length)
        stack.announce_latest()
        try:
            result = Soak(stack, {s.name: s for s in svc.started}, cfg).run()
        finally:
            stack.stop_children()
    info["loadavg_end"] = os.getloadavg()
    return {"machine": info, "run_dir": str(run_dir), **result}
