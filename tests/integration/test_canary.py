"""Canary rollout through the live gate, end to end: a real worker (subprocess) and the real
online trainer on a real broker and Redis. Users click what a fixed teacher (the initial model)
ranks first for their session, so a version that ranks like it keeps a high live hit@10. The
trainer's first candidate is made deliberately bad (its item rows shuffled before export): it
serves its canary share, the live gate sees its hit rate fall below the stable version's, and it
is rolled back (announced stable again, its lineage moved aside, every user back on the stable
version). The next candidate, trained on the same clicks, is rolled out to everyone."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
from support.worker_harness import (
    K,
    L,
    WorkerEnv,
    announce,
    event,
    expected_feed,
    feeds,
    item_ids,
    produce,
    running_worker,
    wait_until,
)

from streamrec.config import Settings
from streamrec.contracts.announcement import canary_of, in_canary
from streamrec.encoder.artifact import TrainedModel, save_model_dir
from streamrec.encoder.model import ModelConfig, Recommender
from streamrec.export.exporter import export_model
from streamrec.kafka import read_topic
from streamrec.net import free_port
from streamrec.serving.registry import LocalRegistry
from streamrec.serving.runner import Runner
from streamrec.trainer.process import TrainerProcess

pytestmark = pytest.mark.integration
USERS = [f"u{i}" for i in range(60)]


class ShuffledFirstCandidate(TrainerProcess):
    """The trainer, except that its first candidate ships with its item id rows permuted."""

    shuffled: str | None = None

    def _publish(self, metrics: dict[str, float], canary_share: float) -> tuple[str, dict]:
        if self.shuffled is None:
            rows = self.learner.model.items.id_emb.weight
            with torch.no_grad():
                rows.copy_(rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))])
        version, ann = super()._publish(metrics, canary_share)
        self.shuffled = self.shuffled or version
        return version, ann


def _initial(wenv: WorkerEnv, root: Path) -> tuple[Path, str]:
    """The initial model: saved for the trainer, exported and announced for the worker."""
    torch.manual_seed(0)
    cfg = ModelConfig(d=16, n_layers=1, n_heads=2, session_length=L, dropout=0.0, n_items=len(item_ids()))
    trained = TrainedModel(Recommender(cfg), item_ids(), {})
    init = save_model_dir(root / "init-model", trained)
    first = export_model(
        trained.session_tower, trained.item_ids, trained.item_matrix(), LocalRegistry(wenv.registry_dir), k=K,
        session_length=L,
    )  # fmt: skip
    announce(wenv.broker, wenv.topics["models"], first.ref)
    return init, first.ref.version


def test_a_bad_canary_is_rolled_back_and_a_good_one_rolled_out(wenv: WorkerEnv, tmp_path: Path) -> None:
    # the model alone: the hybrid's live co-occurrence would learn the teacher's clicks within rounds
    wenv.extra = {"STREAMREC_HYBRID__BETA": "0", "STREAMREC_HYBRID__SESSION_WEIGHT": "0"}
    init, stable = _initial(wenv, tmp_path)
    teacher = Runner.load(wenv.registry_dir / stable, "cpu")
    settings = Settings(
        broker=wenv.broker,
        redis=wenv.redis,
        data_dir=tmp_path / "trainer-data",
        k=K,
        registry={"url": str(wenv.registry_dir)},
        topics=wenv.topics,
        trainer={
            "group_id": f"{wenv.prefix}-trainer",
            "interval_s": 1.0,
            "min_new_examples": 32,
            "holdout_size": 64,
            "update_batch": 32,
            "tolerance": 1.0,  # the held-back gate passes everything: the live gate is under test
            "canary_share": 50,
            "canary_min_events": 20,
            "canary_tolerance": 0.25,
            "web_port": free_port(),
        },
        encoder={"n_negatives": 16},
    )
    proc = ShuffledFirstCandidate(settings, init, threading.Event())
    trainer = threading.Thread(target=proc.run)
    sessions = {u: [item_ids()[(37 * i) % len(item_ids())]] for i, u in enumerate(USERS)}
    seen_versions: dict[str, set[str]] = {u: set() for u in USERS}
    n = 0
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        trainer.start()
        try:
            for _round in range(60):
                batch = []
                for u in USERS:  # each user clicks the teacher's first choice for their session
                    recent = sessions[u][-L:]
                    sessions[u].append(expected_feed(teacher, recent, ["click"] * len(recent))[0])
                    batch.append((u, event(n, u, sessions[u][-1])))
                    n += 1
                produce(wenv.broker, wenv.topics["events"], batch)
                last = {u: e["event_id"] for u, e in batch}

                def fed(last: dict[str, str] = last) -> bool:
                    got = feeds(wenv.redis, wenv.feed_prefix, USERS)
                    return all(f is not None and f.event_id == last[u] for u, f in got.items())

                wait_until(fed, 60, lambda: f"feeds missing; log:\n{w.tail()}")
                for u, f in feeds(wenv.redis, wenv.feed_prefix, USERS).items():
                    assert f is not None
                    seen_versions[u].add(f.model_version)
                if proc.metrics.canary_rollouts._value.get() >= 1:
                    break
        finally:
            proc.stop.set()
            trainer.join(60)

    assert proc.metrics.canary_rollbacks._value.get() == 1, "the shuffled canary was not rolled back"
    assert proc.metrics.canary_rollouts._value.get() == 1, "no later canary was rolled out"
    bad = proc.shuffled
    announced = [json.loads(r.value) for r in read_topic(wenv.broker, wenv.topics["models"], min_count=5)]
    kinds = [
        ("canary" if canary_of(a) else "rollback" if "rolled_back" in a else "all", a["version"]) for a in announced
    ]
    good = next(a["version"] for a in announced[3:] if canary_of(a))
    # (the trainer may have started a next canary before it stopped)
    assert kinds[:5] == [("all", stable), ("canary", bad), ("rollback", stable), ("canary", good), ("all", good)], kinds
    refused = announced[2]["rolled_back"]
    assert refused["version"] == bad and refused["live"]["canary"]["hit@10"] < refused["live"]["stable"]["hit@10"]
    assert announced[4]["metrics"]["live"]["canary"]["events"] >= 20
    lineage = settings.data_dir / "trainer" / "models"
    assert (lineage / ".rolled-back" / bad).is_dir() and not (lineage / bad).exists()
    assert json.loads((lineage / "rollbacks.jsonl").read_text().splitlines()[0])["version"] == bad
    # the canary served its share of the users, and only them
    canary = canary_of(announced[1])
    assert canary is not None
    on_bad = {u for u in USERS if bad in seen_versions[u]}
    assert on_bad and on_bad <= {u for u in USERS if in_canary(canary, u)}
