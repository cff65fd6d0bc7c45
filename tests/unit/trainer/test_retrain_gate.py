"""``streamrec retrain``'s gate, without a broker: the newest events are held back (never trained
on) as examples with their users' earlier events; each artifact is scored by its own serving
graph; the online trainer's rule decides (a worse candidate is rejected, a tolerance lets a small
drop through)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support.tiny_model import chain_examples, tiny_trained

from streamrec.config import Settings
from streamrec.contracts.events import Event
from streamrec.datasets import EventLog
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.gate import promotes
from streamrec.encoder.online import OnlineLearner
from streamrec.errors import UserError
from streamrec.export.exporter import export_model
from streamrec.serving.registry import LocalRegistry
from streamrec.settings.encoder import EncoderSettings, TrainerSettings
from streamrec.trainer.retrain import GateExample, hold_back, score


def _log(rows: list[tuple[str, str]]) -> EventLog:
    return EventLog([Event(f"e{k}", user, item, "click", float(k)) for k, (user, item) in enumerate(rows)])


def test_the_newest_events_are_held_back_with_their_users_history() -> None:
    log = _log([("a", "i1"), ("b", "i2"), ("a", "i3"), ("a", "i4"), ("c", "i5"), ("b", "i6"), ("a", "i7")])
    train, examples = hold_back(log, 3, session_length=2)
    assert [ev.item_id for ev in train] == ["i1", "i2", "i3", "i4"]  # the held-back events are not trained on
    # c's first event has no history: no example; a's prefix is cut to the session length
    assert examples == [GateExample(["i2"], ["click"], "i6"), GateExample(["i3", "i4"], ["click"] * 2, "i7")]
    with pytest.raises(UserError, match="too few"):
        hold_back(log, 7, session_length=2)


def _export(trained: TrainedModel, registry: LocalRegistry) -> Path:
    ref = export_model(
        trained.session_tower, trained.item_ids, trained.item_matrix(), registry, k=10, session_length=8, int8=False
    ).ref
    return registry.fetch(ref.version)


def test_a_better_candidate_passes_and_a_worse_one_is_rejected(tmp_path: Path) -> None:
    learner = OnlineLearner(
        tiny_trained(),
        TrainerSettings(holdout_size=16, buffer_size=5000, update_batch=64, lr=3e-3),
        EncoderSettings(n_negatives=16, seed=0),
    )
    learner.add(chain_examples(1200, seed=1), entered_at=0.0)
    for _ in range(150):
        learner.step()
    registry = LocalRegistry(tmp_path / "registry")
    good = _export(learner.trained, registry)
    bad_model = tiny_trained(seed=3)
    with torch.no_grad():
        for p in bad_model.model.session.parameters():
            p.add_(torch.randn_like(p) * 3.0)
    bad = _export(bad_model, registry)
    examples = [GateExample(ex.items, ex.types, ex.next_item) for ex in chain_examples(300, seed=9)]
    settings = Settings(device="cpu")
    good_scores, bad_scores = score(good, examples, settings), score(bad, examples, settings)
    assert good_scores["hr@10"] > bad_scores["hr@10"] + 0.3, (good_scores, bad_scores)
    assert promotes(good_scores, bad_scores, tolerance=0.0)
    assert not promotes(bad_scores, good_scores, tolerance=0.0)
    gap = good_scores["ndcg@10"] - bad_scores["ndcg@10"]
    assert promotes(bad_scores, good_scores, tolerance=gap + 1e-6), "the tolerance lets that drop through"


def test_a_target_the_artifact_lacks_is_a_miss(tmp_path: Path) -> None:
    artifact = _export(tiny_trained(), LocalRegistry(tmp_path / "registry"))
    examples = [GateExample(["i1", "i2"], ["click", "click"], "not-in-the-catalogue")]
    assert score(artifact, examples, Settings(device="cpu")) == {"hr@10": 0.0, "ndcg@10": 0.0}
