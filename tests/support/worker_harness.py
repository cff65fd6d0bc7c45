"""Helpers for the worker integration tests (no tests here; named test_worker_* to sit with them):
a tiny real model artifact, the worker as a real
subprocess (so SIGKILL is real), and readers for feeds, sessions and topics.

The model is the encoder's real SessionTower (d=16, one layer) exported by the real exporter
into a LocalRegistry and loaded by the real Runner in the worker: nothing is mocked. Feeds are
checked against the same Runner loaded in the test process, so "the expected items" are what
this model ranks for the session the worker should have built.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamrec.contracts.announcement import send_announcement
from streamrec.contracts.feed import Feed
from streamrec.encoder.model import ModelConfig, SessionTower
from streamrec.export.exporter import export_model
from streamrec.feed_store import get_feed, redis_client
from streamrec.kafka import ensure_topics, make_producer, read_topic
from streamrec.net import free_port
from streamrec.serving.registry import ArtifactRef, LocalRegistry
from streamrec.serving.runner import Runner

D, N_ITEMS, K, L, PARTITIONS = 16, 200, 10, 8, 2


def item_ids(n: int = N_ITEMS) -> list[str]:
    return [f"item-{i}" for i in range(n)]


def build_artifact(registry_dir: Path, seed: int = 0) -> ArtifactRef:
    torch.manual_seed(seed)
    tower = SessionTower(ModelConfig(d=D, n_layers=1, n_heads=2, session_length=L, dropout=0.0)).eval()
    m = np.random.default_rng(seed).standard_normal((N_ITEMS, D)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return export_model(tower, item_ids(), m, LocalRegistry(registry_dir), k=K, session_length=L).ref


@dataclass
class WorkerEnv:
    """Names of one test's topics/keys and the worker's environment."""

    broker: str
    redis: str
    prefix: str
    data_dir: Path
    registry_dir: Path
    web_port: int = field(default_factory=free_port)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def topics(self) -> dict[str, str]:
        p = self.prefix
        return {k: f"{p}.{k}" for k in ("events", "dlq", "items", "training", "models", "erasures")}

    @property
    def feed_prefix(self) -> str:
        return f"{self.prefix}:feed:"

    def env(self) -> dict[str, str]:
        t = self.topics
        env = dict(os.environ)
        env.update(
            {
                "STREAMREC_BROKER": self.broker,
                "STREAMREC_REDIS": self.redis,
                "STREAMREC_DATA_DIR": str(self.data_dir),
                "STREAMREC_PARTITIONS": str(PARTITIONS),
                "STREAMREC_K": str(K),
                "STREAMREC_SESSION_LENGTH": str(L),
                "STREAMREC_DEVICE": "cpu",
                "STREAMREC_FEED_PREFIX": self.feed_prefix,
                "STREAMREC_REGISTRY__URL": str(self.registry_dir),
                "STREAMREC_ENCODER__TEXT_MODEL": "none",
                "STREAMREC_WORKER__APP_ID": self.prefix,
                "STREAMREC_WORKER__WEB_PORT": str(self.web_port),
                "STREAMREC_WORKER__WEB_HOST": "127.0.0.1",
                "STREAMREC_WORKER__SESSION_TIMEOUT_S": "6",
                "STREAMREC_WORKER__REDIS_RETRY_MAX_S": "0.5",
                "STREAMREC_WORKER__TRAINING_EVERY_S": "1",
                "STREAMREC_WORKER__PROBE_INTERVAL_S": "0.5",
                **{f"STREAMREC_TOPICS__{k.upper()}": v for k, v in t.items()},
                **self.extra,
            }
        )
        return env

    def create_topics(self) -> None:
        t = self.topics
        ensure_topics(
            self.broker,
            {
                t["events"]: (PARTITIONS, False),
                t["dlq"]: (1, False),
                t["items"]: (1, True),
                t["training"]: (1, False),
                t["models"]: (1, True),
                t["erasures"]: (PARTITIONS, True),
            },
        )


class WorkerProcess:
    """``streamrec worker`` in a subprocess, its output in a log file."""

    def __init__(self, env: WorkerEnv, log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamrec.cli", "worker"], env=self.env.env(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.env.web_port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        def ready() -> bool:
            self.check_alive()
            with contextlib.suppress(OSError):
                return self.get("/readyz")[0] == 200
            return False

        wait_until(ready, timeout_s, f"worker not ready; log tail:\n{self.tail()}")

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}; log tail:\n{self.tail()}")

    def metric(self, name: str) -> float:
        _, text = self.get("/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]


def wait_until(cond: Callable[[], bool], timeout_s: float, message: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(message() if callable(message) else message)


def announce(broker: str, topic: str, ref: ArtifactRef) -> None:
    with contextlib.closing(make_producer(broker)) as producer:
        send_announcement(producer, topic, ref.announcement())


def event(i: int, user: str, item: str, ts: float | None = None, etype: str = "click") -> dict[str, Any]:
    return {"event_id": f"e{i}", "user_id": user, "item_id": item, "type": etype, "ts": ts or time.time()}


def produce(broker: str, topic: str, messages: list[tuple[str | None, Any]]) -> None:
    producer = make_producer(broker)
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def feeds(redis_url: str, prefix: str, users: list[str]) -> dict[str, Feed | None]:
    client = redis_client(redis_url)
    try:
        return {u: get_feed(client, u, prefix) for u in users}
    finally:
        client.close()


def feed_after(
    env: WorkerEnv, user: str, event_id: str, timeout_s: float = 30, message: str | Callable[[], str] | None = None
) -> Feed:
    """Wait until ``user``'s feed was caused by ``event_id``, then return it."""

    def fed() -> bool:
        f = feeds(env.redis, env.feed_prefix, [user])[user]
        return f is not None and f.event_id == event_id

    wait_until(fed, timeout_s, message or f"no feed for {user} after {event_id}")
    f = feeds(env.redis, env.feed_prefix, [user])[user]
    assert f is not None
    return f


def session_table(broker: str, app_id: str, timeout_s: float = 5.0) -> dict[str, dict[str, Any]]:
    """The latest session per user from the table's changelog topic."""
    out: dict[str, dict[str, Any]] = {}
    for rec in read_topic(broker, f"{app_id}-sessions-changelog", timeout_s=timeout_s):
        if rec.value is not None:
            out[json.loads(rec.key)] = json.loads(rec.value)
    return out


@contextlib.contextmanager
def running_worker(env: WorkerEnv, log_path: Path) -> Iterator[WorkerProcess]:
    w = WorkerProcess(env, log_path).start()
    try:
        yield w
    finally:
        w.stop()


def expected_feed(runner: Runner, items: list[str], types: list[str]) -> list[str]:
    return runner.recommend([items], [types], K, True)[0][0]
