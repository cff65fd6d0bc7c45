"""The online learner: updates raise held-back accuracy on a learnable stream, a candidate
damaged on purpose is rejected by the gate, and rejection restores the served weights."""

from __future__ import annotations

import torch
from support.tiny_model import chain_examples, tiny_trained

from streamrec.contracts.training_batch import Example
from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.online_rows import evaluate_rows
from streamrec.settings.encoder import EncoderSettings, TrainerSettings


def _learner(train_item_ids: bool = True) -> OnlineLearner:
    settings = TrainerSettings(
        holdout_size=200, buffer_size=5000, update_batch=64, lr=3e-3, tolerance=0.0, train_item_ids=train_item_ids
    )
    return OnlineLearner(tiny_trained(), settings, EncoderSettings(n_negatives=16, temperature=0.1, seed=0))


def test_updates_raise_held_back_accuracy_and_pass_the_gate() -> None:
    learner = _learner()
    learner.add(chain_examples(1200, seed=1), entered_at=100.0)
    assert len(learner.holdout) == 200 and len(learner.buffer) == 1000
    before = evaluate_rows(learner.served, list(learner.holdout), learner.device)
    losses = [learner.step() for _ in range(150)]
    assert losses[-1] < losses[0]
    result = learner.gate()
    assert result.promote
    assert result.candidate["hr@10"] > before["hr@10"] + 0.3, (before, result.candidate)
    learned = learner.promoted()
    assert learned and all(r.trained for r in learned) and learner.pending == []


def test_candidate_made_worse_on_purpose_is_rejected_and_rolled_back() -> None:
    learner = _learner()
    learner.add(chain_examples(1200, seed=2), entered_at=100.0)
    for _ in range(150):
        learner.step()
    learner.promoted()  # served = the trained model
    good = {k: v.clone() for k, v in learner.served.state_dict().items()}
    with torch.no_grad():
        for p in learner.model.session.parameters():
            p.add_(torch.randn_like(p) * 3.0)  # sabotage the candidate
    result = learner.gate()
    assert not result.promote and result.candidate["ndcg@10"] < result.served["ndcg@10"]
    learner.rejected()
    for k, v in learner.model.state_dict().items():
        assert torch.equal(v, good[k]), k


def test_unknown_items_are_counted_not_crashing() -> None:
    learner = _learner(train_item_ids=False)
    ex = Example("u", ["i1", "new-item"], ["click", "view"], "brand-new", "click", 0.0, "e")
    assert learner.add([ex], 0.0) == 0 and learner.skipped_unknown == 1
    ex2 = Example("u", ["new-item", "i1"], ["view", "click"], "i2", "click", 0.0, "e2")
    assert learner.add([ex2], 0.0) == 1 and learner.holdout[-1].prefix == [1]


def test_online_updates_follow_drift_that_the_frozen_model_misses() -> None:
    """Pass: after pretraining on the old pattern, the frozen model scores low on the drifted
    stream's held-back window, and the online candidate beats it there by a wide margin."""
    learner = _learner()
    learner.add(chain_examples(1200, seed=3), entered_at=0.0)
    for _ in range(150):
        learner.step()
    learner.promoted()  # served (frozen from here on) = the model of the old pattern
    learner.add(chain_examples(1200, seed=4, step=11), entered_at=1.0)  # pushes the old examples out of the holdout
    assert all(r.target >= 0 for r in learner.holdout)
    frozen = evaluate_rows(learner.served, list(learner.holdout), learner.device)
    for _ in range(150):
        learner.step()
    result = learner.gate()
    assert result.served == frozen
    assert result.candidate["hr@10"] > 1.5 * frozen["hr@10"] + 0.1, (frozen, result.candidate)
    assert result.promote


def _new_item_examples(n: int, seed: int) -> list[Example]:
    """After the chain prefix starting at i{s} (s < 10) comes a brand-new item ``fresh-{s}``."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(n):
        s = int(torch.randint(0, 10, (1,), generator=g))
        items = [f"i{(s + 7 * j) % 40}" for j in range(3)]
        out.append(Example(f"u{k}", items, ["click"] * 3, f"fresh-{s}", "click", 0.0, f"f{seed}-{k}"))
    return out


def test_items_first_seen_in_events_get_rows_that_learn() -> None:
    """Pass: with item-side updates, items the model has never seen get rows on first sight,
    started from the mean id embedding of the session around them, and the candidate learns to
    recommend them where the served version (same rows, untrained) cannot."""
    settings = TrainerSettings(
        holdout_size=200, buffer_size=5000, update_batch=64, lr=3e-3, item_lr=3e-2, train_item_ids=True
    )
    learner = OnlineLearner(tiny_trained(), settings, EncoderSettings(n_negatives=16, temperature=0.1, seed=0))
    n0 = learner.n_items
    first = _new_item_examples(1, seed=9)[0]
    ids = learner.model.items.id_emb.weight
    expected = ids[[learner.index[i] for i in first.items]].mean(0).detach().clone()
    assert learner.add([first], 0.0) == 1 and learner.skipped_unknown == 0
    row = learner.index[first.next_item]
    assert row == n0 and learner.new_items == 1 and bool(learner.model.items.warm[row])
    assert torch.allclose(learner.model.items.id_emb.weight[row], expected)
    assert learner.served.items.id_emb.weight.shape == learner.model.items.id_emb.weight.shape
    learner.add(_new_item_examples(1500, seed=10), entered_at=1.0)
    assert learner.new_items == 10 and learner.n_items == n0 + 10
    for _ in range(200):
        learner.step()
    result = learner.gate()
    assert result.candidate["hr@10"] > result.served["hr@10"] + 0.3, result
    assert learner.promoted() and learner.trained.item_matrix().shape[0] == n0 + 10
    learner.add([*_new_item_examples(10, seed=11), Example("u", ["i1"], ["click"], "later", "click", 0.0, "l")], 2.0)
    assert learner.step() is not None  # the optimiser follows the grown table (moments carried over)


def test_a_trial_freezes_the_exported_weights_while_updates_go_on() -> None:
    learner = _learner()
    learner.add(chain_examples(1200, seed=3), entered_at=100.0)
    for _ in range(20):
        learner.step()
    learner.start_trial()  # exported as a canary
    frozen = {k: v.clone() for k, v in learner.model.state_dict().items()}
    before = list(learner.pending)
    for _ in range(20):
        learner.step()  # learning goes on beside the trial
    learner.add([Example("u", ["i1"], ["click"], "fresh-item", "click", 0.0, "e")], 101.0)  # a new row
    after = [r for r in learner.pending if all(r is not b for b in before)]
    assert after
    learned = learner.promoted()  # the trial's weights are served, not the newer ones
    assert [id(r) for r in learned] == [id(r) for r in before]
    assert [id(r) for r in learner.pending] == [id(r) for r in after]
    assert learner.trial is None and learner.served.items.id_emb.weight.shape[0] == learner.n_items
    for k, v in learner.served.state_dict().items():
        if not k.startswith("items."):  # the appended row aside, exactly the frozen weights
            assert torch.equal(v, frozen[k]), k
