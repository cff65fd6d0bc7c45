"""Offline training pieces: full vs sampled softmax, seen-item masking, window cutting, weight EMA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from streamrec.encoder.data import Sequences
from streamrec.encoder.losses import next_item_infonce, seen_pairs
from streamrec.encoder.trainer import EMA, Trainer, budget_minutes, make_windows
from streamrec.sample import generate_sample
from streamrec.settings.encoder import EncoderSettings


def test_seen_pairs_are_causal_ignore_padding_and_spare_the_target() -> None:
    rows = torch.tensor([[0, 0, 3, 1, 3]])  # two padded slots (row 0), then items 3, 1, 3
    mask = torch.tensor([[False, False, True, True, True]])
    targets = torch.tensor([1, 3, 2])  # the next item after each of the three valid positions
    r, c = seen_pairs(rows, mask, targets)
    seen = torch.zeros(3, 4, dtype=torch.int64)
    seen[r, c] = 1
    # position 0 saw {3}; position 1 saw {3, 1} but its target 3 stays; position 2 saw {3, 1}
    assert seen.tolist() == [[0, 0, 0, 1], [0, 1, 0, 0], [0, 1, 0, 1]]
    assert torch.equal(r, r.sort().values)


def test_excluded_candidates_leave_the_softmax() -> None:
    sess = torch.nn.functional.normalize(torch.ones(1, 8), dim=-1)
    cands = torch.nn.functional.normalize(torch.ones(10, 8), dim=-1)
    exclude = (torch.zeros(5, dtype=torch.int64), torch.arange(5, 10))
    loss = next_item_infonce(sess, torch.tensor([0]), cands, None, 0.1, exclude)
    assert math.isclose(float(loss), math.log(5), rel_tol=1e-5)


def test_chunked_softmax_matches_the_whole_one() -> None:
    torch.manual_seed(0)
    sess = torch.nn.functional.normalize(torch.randn(37, 8), dim=-1).requires_grad_()
    cands = torch.nn.functional.normalize(torch.randn(50, 8), dim=-1).requires_grad_()
    targets = torch.randint(50, (37,))
    log_q = torch.rand(50)
    rows = torch.arange(37).repeat_interleave(2)
    cols = (targets.repeat_interleave(2) + torch.tensor([1, 2]).repeat(37)) % 50
    out = []
    for max_logits in (10**9, 120):  # whole, then 2-row chunks
        loss = next_item_infonce(sess, targets, cands, log_q, 0.1, (rows, cols), max_logits=max_logits)
        grads = torch.autograd.grad(loss, (sess, cands))
        out.append((loss.detach(), *grads))
    for whole, chunked in zip(*out, strict=True):
        assert torch.allclose(whole, chunked, atol=1e-5)


def _seqs(n: int) -> Sequences:
    return Sequences(["u"], [np.arange(n)], [np.ones(n, np.int64)], [np.arange(n, dtype=np.float64)])


@pytest.mark.parametrize("n", [4, 40, 52, 53, 54, 130, 251])
def test_shifted_windows_cover_every_target(n: int) -> None:
    seqs, length = _seqs(n), 50
    train_end = seqs.train_part(0).stop
    for rng in (None, *(np.random.default_rng(s) for s in range(5))):
        wins = make_windows(seqs, length, rng)
        assert all(2 <= len(w) <= length + 1 for w in wins.items)
        targets = set()
        for w in wins.items:
            assert np.array_equal(w, np.arange(w[0], w[0] + len(w)))  # consecutive events
            targets.update(w[1:].tolist())
        assert targets == set(range(1, train_end))
        assert wins.items[0][-1] == train_end - 1  # the newest window always ends at the newest event


@pytest.mark.parametrize("full", [True, False])
def test_full_and_sampled_loss_both_learn(full: bool) -> None:
    _, log = generate_sample(0, n_users=80, n_items=60)
    settings = EncoderSettings(
        d_model=16,
        n_layers=1,
        epochs=3,
        n_negatives=16,
        full_softmax_items=10_000 if full else 0,
        mask_seen=True,
        shift_windows=True,
        ema_decay=0.9,
    )
    trainer = Trainer(log, None, settings, 10, torch.device("cpu"), progress=False)
    assert trainer.full_softmax is full
    trained = trainer.fit()
    losses = [h["loss"] for h in trained.metrics["epochs"]]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]


def test_a_plateau_goes_back_to_the_best_weights_at_a_smaller_step(monkeypatch: pytest.MonkeyPatch) -> None:
    _, log = generate_sample(0, n_users=40, n_items=30)
    settings = EncoderSettings(d_model=8, n_layers=1, epochs=6, patience=10, lr=1e-2, lr_patience=2, lr_decay=0.5)
    trainer = Trainer(log, None, settings, 10, torch.device("cpu"), progress=False)
    scores = iter([0.1, 0.3, 0.2, 0.2, 0.25, 0.4])
    weights: list[torch.Tensor] = []

    def scripted() -> dict:
        weights.append(next(trainer.net.parameters()).detach().clone())
        return {"ndcg@10": next(scores), "hr@10": 0.0}

    starts: list[torch.Tensor] = []
    real_epoch_start = trainer.net.train

    def spy(mode: bool = True) -> torch.nn.Module:
        starts.append(next(trainer.net.parameters()).detach().clone())
        return real_epoch_start(mode)

    monkeypatch.setattr(trainer, "validate", scripted)
    monkeypatch.setattr(trainer.net, "train", spy)
    trained = trainer.fit()
    lrs = [h["lr"] for h in trained.metrics["epochs"]]
    # epochs 3 and 4 miss epoch 2's 0.3: epoch 5 starts from epoch 2's weights at half the rate
    assert lrs == [1e-2, 1e-2, 1e-2, 1e-2, 5e-3, 5e-3]
    assert torch.equal(starts[4], weights[1]) and not torch.equal(starts[4], weights[3])
    assert trained.metrics["best_epoch"] == 6


def test_ema_tracks_weights() -> None:
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(50):
        ema.update(model)
    target = torch.nn.Linear(2, 2)
    ema.copy_to(target)
    assert torch.allclose(target.weight, torch.ones(2, 2), atol=1e-6)


def test_training_budget_is_auto_by_log_size_and_none_on_cuda() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert budget_minutes(0.0, 100_000, cpu) == 8.0  # ml-100k: 10 minutes with text and eval
    assert budget_minutes(0.0, 200_000, cpu) == 16.0
    assert budget_minutes(0.0, 1_000, cpu) == 2.0 and budget_minutes(0.0, 10**7, cpu) == 18.0
    assert budget_minutes(0.0, 200_000, cuda) is None  # until patience runs out
    assert budget_minutes(3.0, 200_000, cuda) == 3.0  # an explicit cap holds everywhere


def test_demo_initial_model_trains_like_streamrec_train_on_a_real_log() -> None:
    import argparse

    from streamrec.commands.demo import SAMPLE_EPOCHS, initial_epochs

    def ns(events: str | None, epochs: int | None) -> argparse.Namespace:
        return argparse.Namespace(events=events, initial_epochs=epochs)

    assert initial_epochs(ns("clicks.csv", None)) is None  # no --encoder-epochs: train's own default
    assert initial_epochs(ns(None, None)) == SAMPLE_EPOCHS
    assert initial_epochs(ns("clicks.csv", 2)) == 2
