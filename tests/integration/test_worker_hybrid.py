"""The hybrid through the real worker (broker, Redis, exported model): an item no model has a
vector for, first seen in one user's clicks, is in another user's feed after a co-click, from
the co-occurrence counts the worker kept per event."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.worker_harness import (
    WorkerEnv,
    announce,
    build_artifact,
    event,
    feed_after,
    feeds,
    produce,
    running_worker,
)

pytestmark = pytest.mark.integration


def test_an_item_first_seen_in_events_reaches_other_feeds(wenv: WorkerEnv, tmp_path: Path) -> None:
    wenv.extra["STREAMREC_HYBRID__BETA"] = "5"  # the bonus outweighs any cosine: the order is certain
    ref = build_artifact(wenv.registry_dir)  # no table shipped: the worker starts empty and counts
    announce(wenv.broker, wenv.topics["models"], ref)
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        produce(wenv.broker, wenv.topics["events"], [("a", event(0, "a", "item-1")), ("a", event(1, "a", "new-x"))])

        feed_after(wenv, "a", "e1", 60, lambda: f"no feed for a; log:\n{w.tail()}")
        produce(wenv.broker, wenv.topics["events"], [("b", event(2, "b", "item-1"))])
        feed_after(wenv, "b", "e2", 60, lambda: f"no feed for b; log:\n{w.tail()}")
        got = feeds(wenv.redis, wenv.feed_prefix, ["a", "b"])
        assert got["b"] is not None and got["b"].items[0] == "new-x"  # recommendable by co-occurrence alone
        assert got["a"] is not None and "new-x" not in got["a"].items  # seen
        assert "item-1" not in got["b"].items
