"""Offline training pieces: full vs sampled softmax, seen-item masking, window cutting, weight EMA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from streamrec.encoder.data import Sequences
from streamrec.encoder.losses import next_item_infonce, seen_so_far
from streamrec.encoder.trainer import EMA, Trainer, make_windows
from streamrec.sample import generate_sample
from streamrec.settings.encoder import EncoderSettings


def test_seen_so_far_is_causal_and_ignores_padding() -> None:
    rows = torch.tensor([[0, 0, 3, 1, 3]])  # two padded slots (row 0), then items 3, 1, 3
    mask = torch.tensor([[False, False, True, True, True]])
    seen = seen_so_far(rows, mask, n_cand=4)[0].int()  # [L, C]
    assert seen.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1]]


def test_excluded_candidates_leave_the_softmax() -> None:
    sess = torch.nn.functional.normalize(torch.ones(1, 8), dim=-1)
    cands = torch.nn.functional.normalize(torch.ones(10, 8), dim=-1)
    exclude = torch.zeros(1, 10, dtype=torch.bool)
    exclude[0, 5:] = True
    loss = next_item_infonce(sess, torch.tensor([0]), cands, None, 0.1, exclude)
    assert math.isclose(float(loss), math.log(5), rel_tol=1e-5)


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
