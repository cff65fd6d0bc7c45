"""New item -> recommendable, on the embedded stack (the ``latency`` part of
:mod:`streamrec.bench.text_tower`): a real broker, Redis and worker; the worker embeds each new
item from its catalogue record with the artifact's ``text.onnx``.

The model is ``streamrec train`` for 2 epochs on the sample data (real MiniLM) and
``streamrec export``; the worker serves it with the hybrid bonus off (``hybrid.beta`` 0), so the
local copy of the model the bench picks each probe session with ranks exactly like the worker.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.config import Settings
from streamrec.contracts.items import item_text
from streamrec.feed_store import get_feed, redis_client
from streamrec.kafka import make_producer
from streamrec.local.stack import Stack, local_services
from streamrec.sample import write_sample

PROBE_EVERY_S = 0.05
TIMEOUT_S = 30.0


def _probe_item(runner: Any, item: str, k: int) -> str | None:
    """The old item whose sessions of 1 to 4 clicks on it (the probe clicks it repeatedly) rank
    ``item`` best, if that is within the top ``k // 2`` for each of them."""
    best, best_rank = None, k // 2
    for other in runner.item_ids:
        if other.startswith("new-"):
            continue
        ranks = []
        for n in range(1, 5):
            ids = runner.recommend([[other] * n], [["click"] * n], k, True)[0][0]
            ranks.append(ids.index(item) if item in ids else k)
        if max(ranks) < best_rank:
            best, best_rank = other, max(ranks)
    return best


def _wait_in_feed(stack: Stack, producer: Any, redis: Any, user: str, probe: str, item: str, t0: float) -> float | None:
    """Click ``probe`` as ``user`` every PROBE_EVERY_S until the feed holds ``item``; seconds
    since ``t0`` (the item's publication), None after TIMEOUT_S."""
    s, n = stack.settings, 0
    while time.time() - t0 < TIMEOUT_S:
        ev = {"event_id": f"{user}-{n}", "user_id": user, "item_id": probe, "type": "click", "ts": time.time()}
        producer.send(s.topics.events, key=user, value=ev)
        producer.flush()
        n += 1
        until = time.time() + PROBE_EVERY_S
        while time.time() < until:
            feed = get_feed(redis, user, s.feed_prefix)
            if feed is not None and item in feed.items:
                return time.time() - t0
            time.sleep(0.005)
    return None


def measure_cold_start(settings: Settings, run_dir: Path, new_items: list[tuple[str, str, str]]) -> dict[str, Any]:
    from streamrec.serving.runner import Runner

    settings = settings.model_copy(
        update={"data_dir": run_dir / "data", "hybrid": settings.hybrid.model_copy(update={"beta": 0.0})}
    )
    rows: list[dict[str, Any]] = []
    with local_services(settings, run_dir) as s:
        stack = Stack(s, run_dir)
        stack.prepare_topics()
        items_path, events_path = write_sample(run_dir / "sample", seed=0)
        stack.ensure_model(events_path, items_path, epochs=2, what="the sample data")
        version = stack.served_version()
        assert version is not None
        runner = Runner.load(stack.registry().fetch(version), "cpu")
        stack.start_worker()
        producer, redis = make_producer(s.broker), redis_client(s.redis)
        try:
            for n, (title, category, text) in enumerate(new_items):
                item = f"new-{n}"
                vec = runner.text_vectors([item_text(title, category, text)])
                assert vec is not None, "the exported model has no text tower"
                runner.upsert_items([item], np.asarray(vec, np.float32))
                probe = _probe_item(runner, item, s.k)
                if probe is None:
                    rows.append({"item": item, "skipped": "no session of one item ranks it in the top K/2"})
                    continue
                t0 = time.time()
                record = {"item_id": item, "title": title, "category": category, "text": text}
                producer.send(s.topics.items, key=item, value=record)
                producer.flush()
                latency = _wait_in_feed(stack, producer, redis, f"cold-{n}", probe, item, t0)
                rows.append({"item": item, "probe": probe, "seconds": latency})
                print(f"   {item}: {latency if latency is None else round(latency, 3)} s", flush=True)
        finally:
            with contextlib.suppress(Exception):
                producer.close()
            redis.close()
            stack.stop_children()
    got = [r["seconds"] for r in rows if r.get("seconds") is not None]
    return {
        "what": "catalogue record with text published -> first feed of a user whose session is about it holding it",
        "model": f"streamrec train --encoder-epochs 2 on the sample data (real MiniLM), {version}",
        "probe_every_s": PROBE_EVERY_S,
        "measured": len(got),
        "timed_out": sum(1 for r in rows if "seconds" in r and r["seconds"] is None),
        "skipped": sum(1 for r in rows if "skipped" in r),
        "p50_s": round(statistics.median(got), 3) if got else None,
        "max_s": round(max(got), 3) if got else None,
        "target_p50_s": 2.0,
        "loadavg": os.getloadavg(),
        "items": rows,
    }
