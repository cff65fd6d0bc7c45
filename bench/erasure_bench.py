"""Erasure to gone: how long after ``streamrec users delete`` publishes a user's erasure until the
worker and the trainer hold nothing of theirs, on the embedded stack (Tansu + redis-server + one
``streamrec worker`` process with a synthetic 10k-item model + the online trainer, in this
process so its buffer can be inspected).

Per round, ``--users`` fresh users send three events each; once every feed is in Redis and the
trainer holds examples of every user, one erasure per user is published (together, as the
command does) and three things are watched per user, from just before the publish: the feed
key gone from Redis, a tombstone as the latest value of the user's key in the session table's
changelog (faust writes it when the table deletes the key), and no example of the user left in
the trainer's replay buffer, held-back window or trained-since-promotion rows. A user's erasure
time is the latest of the three. The trainer never promotes here (``min_new_examples`` out of
reach), so the worker keeps the synthetic model.

``python -m streamrec.bench.erasure_bench --json bench/erasure.json``
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamrec.bench.stack_cli import percentile, run
from streamrec.config import Settings
from streamrec.contracts.erasure import erasure_records
from streamrec.contracts.events import Event
from streamrec.contracts.feed import feed_key
from streamrec.feed_store import get_feed, redis_client
from streamrec.follow import FollowerThread
from streamrec.kafka import publish, security_kwargs

TARGET_S = 5.0
TIMEOUT_S = 30.0
PARTS = ("redis", "table", "trainer")


def trainer_users(proc: Any) -> set[str]:
    """Users with a row anywhere in the trainer's learner (read from another thread: a deque
    mutated meanwhile raises, so read again)."""
    while True:
        learner = proc.learner
        try:
            return {r.user_id for rows in (learner.buffer, learner.holdout, learner.pending) for r in list(rows)}
        except RuntimeError:
            continue


class ErasureWatch:
    """What a process outside the worker can see of a user: the feed key in Redis, the latest
    value of the user's key on the session changelog (followed from its start) and, with a
    trainer in this process, the users its learner holds rows of."""

    def __init__(self, settings: Settings, trainer: Any = None) -> None:
        self.settings = settings
        self.trainer = trainer
        self.redis = redis_client(settings.redis, settings.redis_tls)
        self.changelog = f"{settings.worker.app_id}-sessions-changelog"
        self._reader = FollowerThread(settings.broker, self.changelog, **security_kwargs(settings.kafka_security))
        self.latest: dict[str, bytes | None] = {}  # user -> latest changelog value (None: tombstone)

    def _read_changelog(self) -> None:
        for r in self._reader.drain():
            self.latest[json.loads(r.key)] = r.value

    def erased(self, users: list[str]) -> dict[str, dict[str, bool]]:
        """Per user and part: is it erased there now?"""
        self._read_changelog()
        held = trainer_users(self.trainer) if self.trainer is not None else set()
        pipe = self.redis.pipeline(transaction=False)
        for u in users:
            pipe.exists(feed_key(self.settings.feed_prefix, u))
        in_redis = pipe.execute()
        return {
            u: {"redis": not present, "table": u in self.latest and self.latest[u] is None, "trainer": u not in held}
            for u, present in zip(users, in_redis, strict=True)
        }

    def wait(self, users: list[str], t0: float, timeout_s: float = TIMEOUT_S) -> dict[str, dict[str, float]]:
        """Seconds from ``t0`` (monotonic) until each part of each user was seen erased (parts
        never seen erased within ``timeout_s`` are missing)."""
        seen: dict[str, dict[str, float]] = {u: {} for u in users}
        while time.monotonic() - t0 < timeout_s:
            now = self.erased(users)
            t = time.monotonic() - t0
            for u, parts in now.items():
                for part, done in parts.items():
                    if done and part not in seen[u] and (part != "trainer" or self.trainer is not None):
                        seen[u][part] = t
            if all(len(s) == (3 if self.trainer is not None else 2) for s in seen.values()):
                break
            time.sleep(0.01)
        return seen

    def close(self) -> None:
        self._reader.close()
        self.redis.close()


@contextlib.contextmanager
def running_trainer(settings: Settings, run_dir: Path, item_ids: list[str]) -> Iterator[Any]:
    """The online trainer in a thread of this process, from a tiny model over ``item_ids`` (those
    of the served model), never promoting."""
    from streamrec.encoder.artifact import TrainedModel, save_model_dir
    from streamrec.encoder.model import ModelConfig, Recommender
    from streamrec.trainer.process import TrainerProcess

    s = settings.model_copy(update={"trainer": settings.trainer.model_copy(update={"min_new_examples": 10**9})})
    cfg = ModelConfig(d=16, n_layers=1, n_heads=2, session_length=s.session_length, dropout=0.0, n_items=len(item_ids))
    init = save_model_dir(run_dir / "erasure-init", TrainedModel(Recommender(cfg), list(item_ids), {}))
    stop = threading.Event()
    proc = TrainerProcess(s, init, stop)
    thread = threading.Thread(target=proc.run, name="trainer", daemon=True)
    thread.start()
    try:
        yield proc
    finally:
        stop.set()
        thread.join(30)


def measure(users: int, rounds: int) -> dict[str, Any]:
    from streamrec.bench.e2e_bench import E2EConfig, running_stack

    cfg = E2EConfig.quick()
    items = [f"i{n}" for n in range(cfg.n_items)]  # the synthetic model's (bench.model_bench)
    with running_stack(Settings(), cfg) as bench, running_trainer(bench.settings, bench.run_dir, items) as proc:
        s, watch = bench.settings, ErasureWatch(bench.settings, proc)
        assert bench.producer is not None
        per_user: list[dict[str, float]] = []
        per_round = []
        for r in range(rounds):
            ids = [f"er{r}-{n}" for n in range(users)]
            for n, user in enumerate(ids):
                for j in range(3):  # three events: two training examples (a prefix, then the next item)
                    ev = Event(f"er{r}-{n}-{j}", user, f"i{(n * 7 + j) % 500}", "click", time.time())
                    bench.producer.send(user, ev.to_json())
            bench.producer.flush()
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline:
                fed = sum(get_feed(watch.redis, u, s.feed_prefix) is not None for u in ids)
                held = len(set(ids) & trainer_users(proc))
                if fed == held == len(ids):
                    break
                time.sleep(0.1)
            t0 = time.monotonic()
            publish(s, s.topics.erasures, erasure_records(ids, time.time()))
            seen = watch.wait(ids, t0)
            done = [max(parts.values()) for parts in seen.values() if len(parts) == len(PARTS)]
            per_user += [parts for parts in seen.values() if len(parts) == len(PARTS)]
            row = {"round": r, "users": len(ids), "fed_before": fed, "in_trainer_before": held}
            row["not_erased"] = len(ids) - len(done)
            row |= {"p50_s": round(percentile(done, 0.5), 3), "max_s": round(max(done), 3)} if done else {}
            per_round.append(row)
            print(json.dumps(row), flush=True)
        watch.close()
    overall = [max(p.values()) for p in per_user]
    return {
        "what": "erasure published -> feed gone from Redis, changelog tombstone, no example left in the trainer",
        "stack": "embedded Tansu broker + redis-server + one streamrec worker process (synthetic 10k-item model) "
        "+ the online trainer (in the bench process)",
        "machine": {"cpus": os.cpu_count(), "load_avg_at_end": os.getloadavg()},
        "users_erased": len(overall),
        "not_erased": sum(r["not_erased"] for r in per_round),
        "latency_s": {
            "p50": round(percentile(overall, 0.5), 3),
            "max": round(max(overall), 3),
            **{f"{part}_p50": round(percentile([p[part] for p in per_user], 0.5), 3) for part in PARTS},
            **{f"{part}_max": round(max(p[part] for p in per_user), 3) for part in PARTS},
        },
        "target_s": TARGET_S,
        "rounds": per_round,
    }


def main() -> None:
    run("erasure_bench", __doc__ or "", measure, (20, "users erased per round"), "erasure rounds")


if __name__ == "__main__":
    main()
