"""The serving graph of a multi-interest tower: an item's score is its best interest's, before the
bias, the bonus, seen-masking and TopK (fp32 and int8), the third output is the interest that
scored the top item, and the exported files pass parity against eager torch."""

from __future__ import annotations

import pytest
import torch
from support.export_artifacts import N_ITEMS, D, K, L, item_ids, item_matrix

from streamrec.encoder.model import ModelConfig, Recommender, SessionTower
from streamrec.export.exporter import export_model
from streamrec.export.serving_graph import INT8_INPUTS, ServingGraph
from streamrec.serving.item_index import quantize_items
from streamrec.serving.registry import LocalRegistry

M = 3


def _tower() -> SessionTower:
    torch.manual_seed(0)
    cfg = ModelConfig(d=D, n_heads=2, session_length=L, n_items=N_ITEMS, filter_mix=0.5, interests=M, dropout=0.0)
    tower = Recommender(cfg).session.eval()
    assert tower.interest is not None
    with torch.no_grad():  # gates start at 0 (M copies of one vector): open them
        tower.interest.gate.copy_(torch.linspace(0.5, 1.5, M).unsqueeze(1))
    return tower


def _reference(tower: SessionTower, feeds: dict[str, torch.Tensor], exclude_seen: bool) -> tuple[torch.Tensor, ...]:
    """Every interest against every item, the best per item, the whole [B, N] matrix masked: the slow way."""
    items, mask, matrix = feeds["session_items"], feeds["session_mask"], feeds["item_matrix"]
    with torch.no_grad():
        interests = tower(matrix[items], feeds["session_types"], mask)  # [B, M, d]
        per_interest = torch.einsum("bmd,nd->bmn", interests, matrix)  # [B, M, N]
    dense = torch.zeros(items.shape[0], N_ITEMS).scatter_add(1, feeds["bonus_rows"], feeds["bonus_values"])
    scores = per_interest.amax(1) + feeds["item_bias"] + dense  # [B, N]
    if exclude_seen:
        for b in range(items.shape[0]):
            scores[b, items[b][mask[b]]] = float("-inf")
    top_scores, top_rows = torch.topk(scores, K, dim=1)
    which = per_interest[torch.arange(items.shape[0]), :, top_rows[:, 0]].argmax(1)  # [B]
    return top_scores, top_rows, interests[torch.arange(items.shape[0]), which]


def _feeds() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    items = torch.randint(0, N_ITEMS, (6, L), generator=g)  # [B, L]
    mask = torch.ones(6, L, dtype=torch.bool)
    mask[2, : L - 1] = False  # one item, left-padded
    bias = torch.zeros(N_ITEMS)
    bias[3] = float("-inf")  # an unavailable item
    rows = torch.randint(0, N_ITEMS, (6, 7), generator=g)
    rows[:, 0] = items[:, -1]  # a bonus on a seen item: masked all the same
    return {
        "session_items": items,
        "session_types": torch.randint(1, 5, (6, L), generator=g),
        "session_mask": mask,
        "item_matrix": torch.from_numpy(item_matrix()),
        "item_bias": bias,
        "bonus_rows": rows,
        "bonus_values": 0.5 * torch.rand(rows.shape, generator=g),
    }


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
@pytest.mark.parametrize("exclude_seen", [True, False])
def test_each_item_scores_by_its_best_interest_before_masking_and_topk(int8: bool, exclude_seen: bool) -> None:
    tower, feeds = _tower(), _feeds()
    codes = quantize_items(feeds["item_matrix"].numpy())
    extra = {k: torch.from_numpy(v) for k, v in zip(INT8_INPUTS, codes, strict=True)} if int8 else {}
    args = [feeds[k] for k in ("session_items", "session_types", "session_mask", "item_matrix", "item_bias")]
    with torch.no_grad():
        got = ServingGraph(tower, K, int8=int8)(
            *args, torch.tensor(exclude_seen), feeds["bonus_rows"], feeds["bonus_values"], **extra
        )
    ref_scores, ref_rows, ref_vec = _reference(tower, feeds, exclude_seen)
    torch.testing.assert_close(got[0], ref_scores)
    assert torch.equal(got[1], ref_rows)
    torch.testing.assert_close(got[2], ref_vec)  # [B, d]: the interest that scored the top item
    assert got[2].shape == (6, D)


def test_multi_interest_files_pass_parity_in_every_variant(tmp_path) -> None:
    sessions = [(item_ids()[:3], ["click", "view", "cart"]), (item_ids()[5:25], ["click"] * 20)]
    result = export_model(
        _tower(), item_ids(), item_matrix(), LocalRegistry(tmp_path), k=K, session_length=L, fp16=True,
        real_sessions=sessions,
    )  # fmt: skip
    by_variant = {r.variant: r for r in result.parity}
    assert set(by_variant) == {"fp32", "fp16", "int8"}
    assert all(r.passed and r.untied_topk_overlap == 1.0 for r in result.parity), by_variant
    assert by_variant["fp32"].max_abs_err_embedding < 1e-5
    assert by_variant["int8"].max_abs_err_scores < 1e-4  # candidates re-scored in fp32
