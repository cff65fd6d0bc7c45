"""Session and item towers: shapes, causal masking, padding, cold items."""

from __future__ import annotations

import pytest
import torch

from streamrec.encoder.model import ModelConfig, Recommender


def _model(**kw: object) -> Recommender:
    torch.manual_seed(0)
    return Recommender(ModelConfig(d=16, n_layers=2, n_heads=2, session_length=8, n_items=30, text_dim=6, **kw)).eval()


def _inputs(b: int = 3, length: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    vecs = torch.nn.functional.normalize(torch.randn(b, length, 16, generator=g), dim=-1)
    types = torch.randint(1, 5, (b, length), generator=g)
    mask = torch.ones(b, length, dtype=torch.bool)
    return vecs, types, mask


def test_shapes() -> None:
    m = _model()
    vecs, types, mask = _inputs()
    assert m.session(vecs, types, mask).shape == (3, 16)
    assert m.session.forward_all(vecs, types, mask).shape == (3, 8, 16)
    assert m.items().shape == (30, 16)
    assert m.items(torch.tensor([[1, 2], [3, 4]])).shape == (2, 2, 16)


# 0 = attention (SASRec), 0.5 = attention blended with the causal filter (BSARec), 1 = filter (FMLP-Rec)
MIXES = [0.0, 0.5, 1.0]


@pytest.mark.parametrize("mix", MIXES)
def test_no_future_leakage(mix: float) -> None:
    m = _model(filter_mix=mix)
    vecs, types, mask = _inputs()
    before = m.session.forward_all(vecs, types, mask)
    vecs2, types2 = vecs.clone(), types.clone()
    vecs2[:, 5:] = torch.randn_like(vecs2[:, 5:])
    types2[:, 5:] = 4
    after = m.session.forward_all(vecs2, types2, mask)
    assert torch.allclose(before[:, :5], after[:, :5], atol=1e-6)
    assert not torch.allclose(before[:, 5:], after[:, 5:], atol=1e-3)


@pytest.mark.parametrize("mix", MIXES)
def test_padding_is_ignored_and_never_nan(mix: float) -> None:
    m = _model(filter_mix=mix)
    vecs, types, mask = _inputs()
    short = m.session(vecs[:, -3:], types[:, -3:], mask[:, -3:])  # [B, d] unpadded
    mask_p = mask.clone()
    mask_p[:, :5] = False
    vecs_p = vecs.clone()
    vecs_p[:, :5] = 99.0  # garbage in padded slots must not matter
    padded = m.session(vecs_p, types, mask_p)
    assert torch.allclose(short, padded, atol=1e-5)
    mask_p[0] = False  # a fully padded session
    out = m.session.forward_all(vecs_p, types, mask_p)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("mix", MIXES)
def test_newest_position_alone_matches_all_positions(mix: float) -> None:
    m = _model(filter_mix=mix)
    vecs, types, mask = _inputs()
    assert torch.allclose(m.session(vecs, types, mask), m.session.forward_all(vecs, types, mask)[:, -1], atol=1e-6)


def test_cold_item_vector_comes_from_text_alone() -> None:
    m = _model()
    with torch.no_grad():
        m.items.text_emb.copy_(torch.randn(30, 6))
        m.items.warm[5] = False
    v = m.items(torch.tensor([5]))
    proj = m.items.text_proj
    assert proj is not None
    expect = torch.nn.functional.normalize(proj(m.items.text_emb[5:6]), dim=-1)
    assert torch.allclose(v, expect, atol=1e-6)
