"""The sample generator: deterministic, readable by our own readers, and sequentially structured."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

from streamrec.datasets import load_events, load_items
from streamrec.sample import generate_sample, write_sample


def test_deterministic_by_seed() -> None:
    a = generate_sample(3, n_users=30, n_items=120)
    b = generate_sample(3, n_users=30, n_items=120)
    c = generate_sample(4, n_users=30, n_items=120)
    assert a == b
    assert a[1].events != c[1].events


def test_write_sample_round_trips(tmp_path: Path) -> None:
    items_path, events_path = write_sample(tmp_path, seed=1, n_users=20, n_items=60)
    catalogue, log = generate_sample(1, n_users=20, n_items=60)
    assert load_items(items_path) == catalogue
    loaded = load_events(events_path)
    assert [(e.user_id, e.item_id, e.type) for e in loaded] == [(e.user_id, e.item_id, e.type) for e in log]
    assert not loaded.rejected
    assert all(t and c for t, c in zip(catalogue.titles, catalogue.categories, strict=True))


def test_next_event_mostly_stays_in_category() -> None:
    catalogue, log = generate_sample(0, n_users=100)
    cat = dict(zip(catalogue.item_ids, catalogue.categories, strict=True))
    same = Counter()
    for events in log.by_user().values():
        for prev, nxt in pairwise(events):
            same[cat[prev.item_id] == cat[nxt.item_id]] += 1
    # 12 categories: chance is ~1/12; series continuation and few interests push it far above.
    assert same[True] / sum(same.values()) > 0.6
