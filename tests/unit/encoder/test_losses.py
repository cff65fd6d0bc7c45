"""Losses: sane values and they fall on a learnable toy problem."""

from __future__ import annotations

import math

import torch

from streamrec.encoder.losses import candidate_log_q, next_item_infonce, same_target_contrastive, session_contrastive
from streamrec.encoder.model import ModelConfig, Recommender


def test_uniform_scores_give_log_c() -> None:
    sess = torch.nn.functional.normalize(torch.ones(4, 8), dim=-1)
    cands = torch.nn.functional.normalize(torch.ones(10, 8), dim=-1)
    loss = next_item_infonce(sess, torch.tensor([0, 1, 2, 3]), cands, None, 0.1)
    assert math.isclose(float(loss), math.log(10), rel_tol=1e-5)


def test_logq_lowers_popular_candidates() -> None:
    log_q = candidate_log_q(torch.tensor([0.5, 0.01]), n_batch_slots=100, n_uniform=10, n_items=100)
    assert log_q[0] > log_q[1]


def test_next_item_loss_falls_on_toy_sequences() -> None:
    # Item i is always followed by item (i + 1) % N: learnable only from order.
    torch.manual_seed(0)
    n, length = 20, 6
    model = Recommender(ModelConfig(d=16, n_layers=1, n_heads=2, session_length=length, n_items=n, dropout=0.0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    starts = torch.arange(64) % n
    seq = (starts[:, None] + torch.arange(length + 1)[None, :]) % n  # [B, L+1]
    inp, tgt = seq[:, :-1], seq[:, 1:]
    types = torch.ones_like(inp)
    mask = torch.ones_like(inp, dtype=torch.bool)
    losses = []
    for _ in range(60):
        vecs = model.items()  # [N, d]
        sess = model.session.forward_all(vecs[inp], types, mask)  # [B, L, d]
        loss = next_item_infonce(sess.reshape(-1, 16), tgt.reshape(-1), vecs, None, 0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0]


def test_session_contrastive_prefers_matching_views() -> None:
    a = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    assert session_contrastive(a, a, 0.1) < session_contrastive(a, a.roll(1, 0), 0.1)


def test_same_target_contrastive_pulls_same_next_item_together() -> None:
    torch.manual_seed(0)
    pool = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    targets = torch.tensor([3, 3, 5, 5, 7, 9])
    anchors = torch.tensor([0, 2, 4])  # anchor 4 (item 7) has no positive: counts 0
    aligned = pool.clone()
    aligned[1], aligned[3] = pool[0], pool[2]  # same-target rows made identical
    loose = same_target_contrastive(pool, targets, anchors, 0.1)
    tight = same_target_contrastive(aligned, targets, anchors, 0.1)
    assert torch.isfinite(loose) and tight < loose
    assert float(same_target_contrastive(pool, torch.arange(6), anchors, 0.1)) == 0.0
