"""User erasure end to end on the real broker and Redis: ``streamrec users delete`` publishes
the erasure; the running worker (a real subprocess) deletes the user's feed from Redis and their
session from the table (the changelog's latest value for the key becomes a tombstone), and the
online trainer (real, in this process) drops the user's buffered and held-back examples. Another
user is untouched, and a later event of the erased user starts a new, empty session. A worker
refuses to start on an erasure topic not partitioned like the events."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.worker_harness import (
    PARTITIONS,
    K,
    L,
    WorkerEnv,
    announce,
    build_artifact,
    event,
    feed_after,
    feeds,
    item_ids,
    produce,
    running_worker,
    wait_until,
)

from streamrec.bench.erasure_bench import PARTS, ErasureWatch, running_trainer, trainer_users
from streamrec.cli import main
from streamrec.config import Settings
from streamrec.errors import UserError
from streamrec.kafka import ensure_topics
from streamrec.local.services import EmbeddedServices
from streamrec.streams.worker import run_worker

pytestmark = pytest.mark.integration


def _settings(wenv: WorkerEnv, data_dir: Path) -> Settings:
    """The trainer's (and the watch's) view of the test's stack."""
    return Settings(
        broker=wenv.broker,
        redis=wenv.redis,
        data_dir=data_dir,
        k=K,
        session_length=L,
        partitions=PARTITIONS,
        device="cpu",
        feed_prefix=wenv.feed_prefix,
        topics=wenv.topics,
        registry={"url": str(wenv.registry_dir)},
        encoder={"text_model": "none", "n_negatives": 8},
        trainer={"group_id": f"{wenv.prefix}-trainer", "holdout_size": 16, "update_batch": 8, "canary_share": 0},
        worker={"app_id": wenv.prefix},
    )


def test_user_erasure_reaches_redis_the_table_changelog_and_the_trainer(wenv: WorkerEnv, tmp_path: Path) -> None:
    ref = build_artifact(wenv.registry_dir)
    announce(wenv.broker, wenv.topics["models"], ref)
    settings = _settings(wenv, tmp_path / "trainer-data")
    with running_worker(wenv, tmp_path / "worker.log") as w, running_trainer(settings, tmp_path, item_ids()) as proc:
        w.wait_ready()
        # 11 + 7 examples: the held-back window (16) full, the oldest two (of "gone") in the buffer
        sessions = {"gone": [f"item-{i}" for i in range(1, 13)], "kept": [f"item-{i}" for i in range(20, 28)]}
        n = 0
        for user, items in sessions.items():
            produce(wenv.broker, wenv.topics["events"], [(user, event(n + i, user, it)) for i, it in enumerate(items)])
            n += len(items)
        feed_after(wenv, "gone", "e11", message=lambda: w.tail())
        feed_after(wenv, "kept", "e19", message=lambda: w.tail())

        def held() -> bool:
            buffered, window = {r.user_id for r in proc.learner.buffer}, {r.user_id for r in proc.learner.holdout}
            return "gone" in buffered and {"gone", "kept"} <= window

        wait_until(held, 30, "the trainer never held both users' examples (and buffered ones of 'gone')")
        watch = ErasureWatch(settings, proc)
        try:
            wait_until(lambda: watch.erased(["gone"])["gone"]["table"] is False, 10, "no session on the changelog")
            t0 = time.monotonic()
            topic_flags = [a for name, topic in wenv.topics.items() for a in (f"--topics-{name}", topic)]
            assert (
                main(
                    ["users", "delete", "gone", "--broker", wenv.broker, "--partitions", str(PARTITIONS), *topic_flags]
                )
                == 0
            )
            seen = watch.wait(["gone"], t0)["gone"]
            assert set(seen) == set(PARTS), f"not erased everywhere after 30 s: {seen}\n{w.tail()}"
            print(f"erasure took {max(seen.values()):.3f} s ({seen})")

            assert feeds(wenv.redis, wenv.feed_prefix, ["gone"])["gone"] is None
            assert watch.latest["gone"] is None, "the changelog's latest value of the key is a tombstone"
            assert not any(r.user_id == "gone" for r in [*proc.learner.buffer, *proc.learner.holdout])
            assert proc.metrics.erased_examples._value.get() >= 11  # the examples of a 12-event session
            assert w.metric("streamrec_erasures_total") == 1
            # the other user is untouched
            assert feeds(wenv.redis, wenv.feed_prefix, ["kept"])["kept"] is not None
            assert json.loads(watch.latest["kept"] or b"{}")["i"] == sessions["kept"][-L:]
            assert "kept" in trainer_users(proc)

            # a later event: a new, empty session (the table no longer had the old one)
            produce(wenv.broker, wenv.topics["events"], [("gone", event(n, "gone", "item-9"))])
            feed_after(wenv, "gone", f"e{n}", message=lambda: w.tail())
            wait_until(
                lambda: watch.erased(["gone"]) and watch.latest.get("gone") is not None,
                10,
                "the new session never reached the changelog",
            )
            assert json.loads(watch.latest["gone"] or b"{}")["i"] == ["item-9"]
        finally:
            watch.close()


def test_a_worker_refuses_an_erasure_topic_not_partitioned_like_the_events(
    services: EmbeddedServices, unique_prefix: str, tmp_path: Path
) -> None:
    names = ("events", "dlq", "items", "training", "models", "erasures")
    settings = Settings(
        broker=services.broker,
        redis=services.redis,
        data_dir=tmp_path,
        device="cpu",
        partitions=2,
        topics={n: f"{unique_prefix}.{n}" for n in names},
    )
    ensure_topics(services.broker, {settings.topics.events: (2, False), settings.topics.erasures: (3, True)})
    with pytest.raises(UserError, match="partitions"):
        run_worker(settings)
