"""The hybrid on the serving side: the runner adds a sparse bonus inside its ONNX graph, the live
table makes an item first seen in events recommendable, and the worker's pipeline counts each
batch before scoring it; ``streamrec eval --stream`` drives that pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from support.tiny_model import tiny_trained
from support.worker_harness import build_artifact

from streamrec.config import Settings
from streamrec.contracts.events import Event
from streamrec.cooccurrence import Cooccurrence
from streamrec.encoder.artifact import save_model_dir
from streamrec.local.stream_eval import MemoryFeeds, _pipeline, _records, stream_eval
from streamrec.serving.hybrid import LiveHybrid
from streamrec.serving.runner import Runner
from streamrec.settings.hybrid import HybridSettings
from streamrec.streams.model_slot import ModelSlot


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    reg = tmp_path_factory.mktemp("registry")
    ref = build_artifact(reg)
    return Runner.load(reg / ref.version, "cpu")


def test_runner_adds_the_bonus_before_top_k(runner: Runner) -> None:
    session = [["item-1", "item-2"]]
    plain = runner.recommend(session, [["click"] * 2], 10, True)[0][0]
    last = runner.item_ids.index("item-199") if "item-199" not in plain else runner.item_ids.index("item-198")
    rows = np.array([[last, runner.item_ids.index("item-1")]], np.int64)  # the second is seen: stays out
    boosted = runner.recommend(session, [["click"] * 2], 10, True, (rows, np.array([[50.0, 50.0]], np.float32)))
    assert runner.takes_bonus
    assert boosted[0][0][0] == runner.item_ids[last] and "item-1" not in boosted[0][0]
    assert boosted[0][0][1:] == plain[:9]  # everything else keeps the model's order


def test_an_item_first_seen_in_events_becomes_recommendable(runner: Runner) -> None:
    hybrid = LiveHybrid(HybridSettings(beta=5.0), Cooccurrence(16, 5))
    hybrid.observe([(["item-3"], "brand-new"), (["item-4"], "item-5")])
    assert runner.rows_of(["brand-new"])[0] == -1
    bonus = hybrid.bonus(runner, [["item-3"]])
    assert bonus is not None and runner.rows_of(["brand-new"])[0] >= 0  # upserted with a zero vector
    feed = runner.recommend([["item-3"]], [["click"]], 10, True, bonus)[0][0]
    assert feed[0] == "brand-new"
    assert LiveHybrid(HybridSettings(beta=0.0), Cooccurrence()).bonus(runner, [["item-3"]]) is None


def test_the_repeat_term_only_serves_a_feed_that_keeps_seen_items(runner: Runner) -> None:
    table = Cooccurrence(16, 5)
    table.observe_sequences([table.rows_of(["item-3", "item-4", "item-3"])])  # a re-click: share > 0
    hybrid = LiveHybrid(HybridSettings(beta=1.0, repeat_weight=10.0), table)
    excluded, kept = hybrid.bonus(runner, [["item-4", "item-3"]]), hybrid.bonus(runner, [["item-4", "item-3"]], True)
    assert excluded is not None and kept is not None
    own = runner.rows_of(["item-3", "item-4"])
    assert kept[1][np.isin(kept[0], own)].sum() > excluded[1][np.isin(excluded[0], own)].sum()
    feed = runner.recommend([["item-4", "item-3"]], [["click"] * 2], 10, False, kept)[0][0]
    assert feed[0] == "item-3"  # the newest session item, back in a feed that keeps seen items


def test_session_votes_bring_what_similar_sessions_clicked(runner: Runner) -> None:
    settings = HybridSettings(beta=0.0, session_weight=50.0)
    hybrid = LiveHybrid(settings, Cooccurrence(16, 5))
    hybrid.observe([(["item-3"], "item-4"), (["item-3", "item-4"], "item-9")])  # rows for the items
    assert hybrid.bonus(runner, [["item-3", "item-4", "item-9"]], users=["a"]) is not None  # stores a's session
    alone = hybrid.bonus(runner, [["item-3", "item-4", "item-9"]], users=["a"])
    assert alone is not None and (alone[0] < 0).all()  # a is not its own neighbour
    bonus = hybrid.bonus(runner, [["item-3"]], users=["b"])
    feed = runner.recommend([["item-3"]], [["click"]], 10, True, bonus)[0][0]
    assert feed[:2] == ["item-4", "item-9"] or feed[:2] == ["item-9", "item-4"]  # what a clicked after item-3
    assert hybrid.bonus(runner, [["item-3"]]) is None  # no owners given, beta 0: nothing to add


def test_the_pipeline_counts_a_batch_before_scoring_it(runner: Runner) -> None:
    settings = Settings(k=10, session_length=8)
    hybrid = LiveHybrid(settings.hybrid.model_copy(update={"beta": 5.0}))
    feeds, slot = MemoryFeeds(), ModelSlot()
    slot.swap(runner)
    pipeline = _pipeline(settings, slot, feeds, hybrid)
    events = [Event(f"e{n}", u, i, "click", 1.0 + n) for n, (u, i) in enumerate([("a", "item-7"), ("a", "fresh")])]
    events += [Event("e9", "b", "item-7", "click", 9.0)]
    try:
        asyncio.run(pipeline.process(_records(events, 0)))
    finally:
        pipeline.close()
    assert hybrid.table is not None and "fresh" in hybrid.table.rows  # no table shipped: learnt online
    assert feeds.feeds["b"].items[0] == "fresh"  # co-clicked with item-7 in the same batch
    assert "fresh" not in feeds.feeds["a"].items  # seen


def test_stream_eval_replays_through_the_pipeline(tmp_path: Path) -> None:
    trained = tiny_trained(n_items=40)
    model_dir = save_model_dir(tmp_path / "m", trained)
    ids = trained.item_ids
    # 50 users a half, 4 steps each, interleaved (a chunk of 20 holds one step of 20 users)
    steps = [(half * 50 + u, k) for half in range(2) for k in range(4) for u in range(50)]
    events = [Event(f"e{n}", f"u{u}", ids[(u + 3 * k) % 40], "click", 1.7e9 + n) for n, (u, k) in enumerate(steps)]
    settings = Settings(k=10, session_length=8, data_dir=tmp_path / "state")
    res = stream_eval(settings, model_dir, events[200:], events[:200])
    served, knn = res["methods"]["served"], res["methods"]["cooccurrence"]
    assert served["events_checked"] == knn["events_checked"] == 150  # first event of each user: no feed
    assert served["events_without_feed"] == 50
    assert knn["online_hr@10"] > 0.9  # the same 4-step pattern every session: the table learns it
    votes = res["methods"]["session_knn"]  # older users clicked the same runs: their sessions vote
    assert votes["events_checked"] == 150 and votes["online_hr@10"] > 0.9, votes
    assert res["protocol"]["base_table"] == "counted on the older part of the log"


def test_stream_eval_online_promotes_and_learns_items_first_seen_in_events(tmp_path: Path) -> None:
    """The online trainer's rule inside the replay: the worker's training batches reach the
    learner, promotions are exported and swapped in, and an item first seen in the replay gets
    a trainable row."""
    trained = tiny_trained(n_items=40)
    model_dir = save_model_dir(tmp_path / "m", trained)
    ids = trained.item_ids
    steps = [(half * 50 + u, k) for half in range(2) for k in range(4) for u in range(50)]
    events = [
        Event(f"e{n}", f"u{u}", "new-item" if u >= 50 and u % 5 == 0 and k == 2 else ids[(u + 3 * k) % 40], "click", n)
        for n, (u, k) in enumerate(steps)
    ]  # an item the model and the older half have never seen, third click of every fifth newer user
    settings = Settings.model_validate(
        {
            "k": 10,
            "session_length": 8,
            "data_dir": tmp_path / "state",
            "worker": {"training_every_n": 8},
            "trainer": {"interval_s": 0.05, "min_new_examples": 16, "holdout_size": 16, "train_item_ids": True},
        }
    )
    res = stream_eval(settings, model_dir, events[200:], events[:200], online=True)
    online = res["online"]
    assert online["promotions"] + online["rejections"] >= 2 and online["update_steps"] > 0
    assert online["items_added_online"] == 1 and online["train_item_ids"]
    assert online["sawtooth"]["gaps"] == online["promotions"] - 1
    assert res["methods"]["served"]["events_checked"] == 150
    assert "online trainer on" in res["protocol"]["served"]
    new = res["new_items"]
    assert new["new_items"] == 1 and new["reached_a_feed"] == 1 and new["median_delay_events"] >= 0
