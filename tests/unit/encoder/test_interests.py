"""Multi-interest sessions: one interest is the single-vector tower as it was, M interests are
causal and padding-blind, training and ranking score every item by its nearest interest, and the
offline trainer, the model directory and the online learner all carry them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support.tiny_model import N_ITEMS, chain_examples

from streamrec.encoder.artifact import TrainedModel, load_model_dir, save_model_dir
from streamrec.encoder.interests import max_over_interests, nearest_interest
from streamrec.encoder.losses import next_item_infonce
from streamrec.encoder.model import ModelConfig, Recommender
from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.online_rows import evaluate_rows
from streamrec.encoder.trainer import Trainer
from streamrec.sample import generate_sample
from streamrec.settings.encoder import EncoderSettings, TrainerSettings

HEAD = {"session.interest.w1.weight", "session.interest.w1.bias", "session.interest.w2.weight", "session.interest.gate"}
# The first 4 components of the 3 session vectors of _inputs(), from the tower before interests
# existed (commit d66246c, same seed and config): M = 1 must still compute them.
BEFORE = [
    [0.10023600608110428, -0.3229036331176758, 0.5988269448280334, 0.07650632411241531],
    [0.5878310203552246, 0.41233161091804504, 0.1602204442024231, 0.27176588773727417],
    [0.36958062648773193, 0.14509543776512146, 0.10581399500370026, 0.10353059321641922],
]


def _model(interests: int, filter_mix: float = 0.5) -> Recommender:
    torch.manual_seed(0)
    shape = {"d": 16, "n_layers": 2, "n_heads": 2, "session_length": 8, "n_items": 30, "text_dim": 6}
    model = Recommender(ModelConfig(**shape, filter_mix=filter_mix, interests=interests)).eval()
    if model.session.interest is not None:  # gates start at 0 (M copies of one vector): open them
        with torch.no_grad():
            model.session.interest.gate.copy_(torch.linspace(0.5, 1.5, interests).unsqueeze(1))
    return model


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    vecs = torch.nn.functional.normalize(torch.randn(3, 8, 16, generator=g), dim=-1)  # [B, L, d]
    types = torch.randint(1, 5, (3, 8), generator=g)  # [B, L]
    mask = torch.ones(3, 8, dtype=torch.bool)
    mask[0, :3] = False  # one left-padded session
    return vecs, types, mask


def test_one_interest_is_the_single_vector_tower_as_before() -> None:
    one, two = _model(1), _model(2)
    assert not any(k.startswith("session.interest") for k in one.state_dict())
    assert set(two.state_dict()) - set(one.state_dict()) == HEAD
    # The head is built last, so the same seed draws every other weight as before.
    assert all(torch.equal(v, two.state_dict()[k]) for k, v in one.state_dict().items())
    vecs, types, mask = _inputs()
    with torch.no_grad():
        two.session.interest.gate.zero_()  # closed gates: every interest is the single vector
        torch.testing.assert_close(two.session(vecs, types, mask)[:, 1], one.session(vecs, types, mask))
    with torch.no_grad():
        out = one.session(vecs, types, mask)  # [B, d]
    assert out.shape == (3, 16)
    torch.testing.assert_close(out[:, :4], torch.tensor(BEFORE), atol=1e-5, rtol=0)


@pytest.mark.parametrize("mix", [0.0, 0.5])
def test_interests_are_causal_padding_blind_and_newest_matches_all(mix: float) -> None:
    m = _model(3, mix)
    vecs, types, mask = _inputs()
    mask[:] = True
    with torch.no_grad():
        every = m.session.forward_all(vecs, types, mask)  # [B, L, M, d]
        assert every.shape == (3, 8, 3, 16)
        torch.testing.assert_close(every.norm(dim=-1), torch.ones(3, 8, 3))
        torch.testing.assert_close(m.session(vecs, types, mask), every[:, -1], atol=1e-6, rtol=0)
        later = vecs.clone()
        later[:, 5:] = torch.randn_like(later[:, 5:])
        changed = m.session.forward_all(later, types, mask)
        torch.testing.assert_close(changed[:, :5], every[:, :5], atol=1e-6, rtol=0)
        assert not torch.allclose(changed[:, 5:], every[:, 5:], atol=1e-3)
        short = m.session(vecs[:, -3:], types[:, -3:], mask[:, -3:])  # [B, M, d] unpadded
        padded_mask = mask.clone()
        padded_mask[:, :5] = False
        garbage = vecs.clone()
        garbage[:, :5] = 99.0  # padded slots must not matter
        torch.testing.assert_close(m.session(garbage, types, padded_mask), short, atol=1e-5, rtol=0)
        padded_mask[0] = False  # a fully padded session stays finite
        assert torch.isfinite(m.session.forward_all(garbage, types, padded_mask)).all()


def test_nearest_interest_is_the_argmax_and_only_it_gets_gradient() -> None:
    interests = torch.nn.functional.normalize(torch.randn(4, 3, 8), dim=-1).requires_grad_()  # [B, M, d]
    targets = interests.detach()[torch.arange(4), torch.tensor([2, 0, 1, 2])] + 0.01  # [B, d]
    picked = nearest_interest(interests, targets)  # [B, d]
    picked.sum().backward()
    assert interests.grad is not None
    touched = interests.grad.abs().sum(-1) > 0  # [B, M]
    assert touched.tolist() == [[False, False, True], [True, False, False], [False, True, False], [False, False, True]]


@pytest.mark.parametrize("max_logits", [10**9, 200])  # whole, then checkpointed row chunks
def test_the_loss_scores_every_candidate_by_its_nearest_interest(max_logits: int) -> None:
    torch.manual_seed(0)
    interests = torch.nn.functional.normalize(torch.randn(9, 3, 8), dim=-1).requires_grad_()  # [P, M, d]
    cands = torch.nn.functional.normalize(torch.randn(20, 8), dim=-1)  # [C, d]
    targets, log_q = torch.randint(20, (9,)), torch.rand(20)
    hard = torch.nn.functional.normalize(torch.randn(9, 2, 8), dim=-1), torch.zeros(9, 2)  # [P, H, d], [P, H]
    loss = next_item_infonce(interests, targets, cands, log_q, 0.1, None, max_logits, hard)
    best = torch.einsum("pmd,cd->pmc", interests, cands).amax(1) / 0.1 - log_q  # [P, C]: target's nearest too
    own = torch.einsum("pmd,phd->pmh", interests, hard[0]).amax(1) / 0.1  # [P, H]
    expect = torch.nn.functional.cross_entropy(torch.cat([best, own], dim=1), targets)
    torch.testing.assert_close(loss, expect)
    (grad,) = torch.autograd.grad(loss, interests)
    assert (grad.abs().sum(-1) > 0).all()  # every interest meets negatives, not only the target's


def test_an_item_scores_by_its_best_interest() -> None:
    torch.manual_seed(0)
    interests, items = torch.randn(5, 4, 8), torch.randn(30, 8)  # [B, M, d], [N, d]
    brute = torch.stack([interests[:, m] @ items.T for m in range(4)]).amax(0)  # [B, N]
    torch.testing.assert_close(max_over_interests(interests, items), brute)
    one = interests[:, 0]  # [B, d]: a single vector is the plain product, bit for bit
    assert torch.equal(max_over_interests(one, items), one @ items.T)


def test_offline_training_learns_with_interests_and_the_model_directory_keeps_them(tmp_path: Path) -> None:
    _, log = generate_sample(0, n_users=60, n_items=40)
    settings = EncoderSettings(d_model=16, n_layers=1, epochs=3, interests=2, supcon_weight=0.1, cl_weight=0.1)
    trained = Trainer(log, None, settings, 10, torch.device("cpu"), progress=False).fit()
    losses = [h["loss"] for h in trained.metrics["epochs"]]
    assert losses[-1] < losses[0]
    loaded = load_model_dir(save_model_dir(tmp_path / "m", trained))
    assert loaded.model_config.interests == 2
    idx, types, mask = torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.bool)
    with torch.no_grad():
        got = loaded.model.encode_sessions(idx, types, mask)  # [1, M, d]
        assert got.shape == (1, 2, 16) and torch.equal(got, trained.model.eval().encode_sessions(idx, types, mask))


def test_online_updates_learn_with_interests() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(d=16, n_layers=1, n_heads=2, session_length=8, dropout=0.0, n_items=N_ITEMS, interests=2)
    trained = TrainedModel(model=Recommender(cfg), item_ids=[f"i{j}" for j in range(N_ITEMS)], config={})
    settings = TrainerSettings(holdout_size=200, buffer_size=5000, update_batch=64, lr=3e-3)
    learner = OnlineLearner(trained, settings, EncoderSettings(n_negatives=16, temperature=0.1, seed=0))
    learner.add(chain_examples(1200, seed=1), entered_at=100.0)
    before = evaluate_rows(learner.served, list(learner.holdout), learner.device)
    for _ in range(150):
        learner.step()
    result = learner.gate()
    assert result.promote and result.candidate["hr@10"] > before["hr@10"] + 0.3, (before, result.candidate)
