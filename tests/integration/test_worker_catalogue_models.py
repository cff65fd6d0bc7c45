"""Catalogue and model updates reach a running worker: a new item published with a vector is
recommended within seconds, a withdrawn one disappears, a newly announced model is swapped
in, and a corrupt artifact is refused while the old model keeps serving."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import redis
from support.worker_harness import (
    WorkerEnv,
    announce,
    build_artifact,
    event,
    feed_after,
    produce,
    running_worker,
    wait_until,
)

from streamrec.bench.e2e_bench import worker_provider
from streamrec.feed_store import get_feed
from streamrec.prom import parse
from streamrec.serving.registry import ArtifactRef
from streamrec.serving.runner import Runner

pytestmark = pytest.mark.integration


def test_new_item_is_recommended_within_seconds_and_withdrawn_items_vanish(wenv: WorkerEnv, tmp_path: Path) -> None:
    ref = build_artifact(wenv.registry_dir)
    announce(wenv.broker, wenv.topics["models"], ref)
    runner = Runner.load(wenv.registry_dir / ref.version, "cpu")
    session = ["item-1", "item-2", "item-3"]
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        produce(wenv.broker, wenv.topics["events"], [("uc", event(i, "uc", it)) for i, it in enumerate(session)])
        before = feed_after(wenv, "uc", "e2")
        # A vector that scores above everything for this session: sum of the top items' vectors
        # weighted by their (positive) scores, scaled up.
        rows = {i: n for n, i in enumerate(runner.item_ids)}
        matrix = np.load(wenv.registry_dir / ref.version / "items.npy")
        ids, scores = runner.recommend([[*session, "item-4"]], [["click"] * 4], 10, True)[0]
        vec = 100 * sum(max(s, 0.0) * matrix[rows[i]] for i, s in zip(ids, scores, strict=True))
        t0 = time.monotonic()
        produce(
            wenv.broker,
            wenv.topics["items"],
            [("new-item", {"item_id": "new-item", "title": "New", "vector": vec.tolist()})],
        )
        wait_until(lambda: w.metric("streamrec_catalogue_updates_total") >= 1, 10, lambda: w.tail())
        produce(wenv.broker, wenv.topics["events"], [("uc", event(3, "uc", "item-4"))])
        after = feed_after(wenv, "uc", "e3")
        assert after.items[0] == "new-item" and "new-item" not in before.items
        client = redis.Redis.from_url(wenv.redis)
        assert time.monotonic() - t0 < 10
        # Withdrawn (tombstone): never recommended again.
        produce(
            wenv.broker,
            wenv.topics["items"],
            [("new-item", None), ("item-5", {"item_id": "item-5", "available": False})],
        )
        # The feed written before the withdrawal stops showing it at once (filtered at read time).
        wait_until(lambda: "new-item" not in get_feed(client, "uc", wenv.feed_prefix).items, 5, lambda: w.tail())
        wait_until(lambda: w.metric("streamrec_catalogue_updates_total") >= 3, 10, lambda: w.tail())
        produce(wenv.broker, wenv.topics["events"], [("uc", event(4, "uc", "item-6"))])
        final = feed_after(wenv, "uc", "e4")
        assert "new-item" not in final.items and "item-5" not in final.items
        # Live metrics: each of the 5 events was scored against the feed held before it, or
        # counted as having none (the first one, at least).
        with_feed = w.metric("streamrec_live_events_with_feed_total")
        assert w.metric("streamrec_live_events_without_feed_total") >= 1 and with_feed >= 1
        assert with_feed + w.metric("streamrec_live_events_without_feed_total") == 5


def test_announced_model_is_swapped_in_and_a_corrupt_one_refused(wenv: WorkerEnv, tmp_path: Path) -> None:
    wenv.extra["STREAMREC_DEVICE"] = "auto"  # no GPU here: it falls back and the metric says why
    v1 = build_artifact(wenv.registry_dir, seed=0)
    announce(wenv.broker, wenv.topics["models"], v1)
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        produce(wenv.broker, wenv.topics["events"], [("um", event(0, "um", "item-1"))])
        assert feed_after(wenv, "um", "e0").model_version == v1.version
        # A corrupt artifact: a copy of v1 under a new version with a tampered item matrix.
        bad_dir = wenv.registry_dir / "v-corrupt"
        shutil.copytree(wenv.registry_dir / v1.version, bad_dir)
        with (bad_dir / "items.npy").open("r+b") as f:
            f.seek(-8, 2)
            f.write(b"\x00garbage")
        bad = ArtifactRef("v-corrupt", v1.sha256, str(bad_dir), v1.version, time.time(), {})
        announce(wenv.broker, wenv.topics["models"], bad)
        wait_until(lambda: w.metric("streamrec_model_load_failures_total") == 1, 30, lambda: w.tail())
        produce(wenv.broker, wenv.topics["events"], [("um", event(1, "um", "item-2"))])
        assert feed_after(wenv, "um", "e1").model_version == v1.version  # old model keeps serving
        time.sleep(1.1)  # versions are timestamps
        v2 = build_artifact(wenv.registry_dir, seed=1)
        announce(wenv.broker, wenv.topics["models"], v2)
        wait_until(lambda: w.metric("streamrec_model_swaps_total") == 2, 30, lambda: w.tail())
        produce(wenv.broker, wenv.topics["events"], [("um", event(2, "um", "item-3"))])
        assert feed_after(wenv, "um", "e2").model_version == v2.version
        _, text = w.get("/metrics")
        assert f'streamrec_model_version_info{{version="{v2.version}"}} 1.0' in text
        provider = worker_provider(parse(text))
        assert (provider["provider"], provider["device"]) == ("CPUExecutionProvider", "cpu")
        assert provider["reason"].startswith("device=auto but ") and provider["reason"].endswith("falling back to CPU")
        assert json.loads(w.get("/readyz")[1])["model_version"] == v2.version
