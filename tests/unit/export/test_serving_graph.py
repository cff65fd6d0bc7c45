"""The serving graph's seen-masking among K + L candidates equals masking the whole score matrix,
in the fp32 graph and in the int8 one (int8 candidates, exact fp32 re-score)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from support.export_artifacts import D, MeanTower, item_matrix

from streamrec.export.onnx_export import export_serving_graph
from streamrec.export.serving_graph import INT8_INPUTS, ServingGraph
from streamrec.serving.item_index import quantize_items

K = 5


def reference_topk(tower: MeanTower, items, types, mask, matrix, bias, exclude_seen: bool):
    """Mask seen rows in the full [B, N] score matrix, then top-K: the obvious, slow way."""
    with torch.no_grad():
        scores = tower(matrix[items], types, mask) @ matrix.T + bias  # [B, N]
    if exclude_seen:
        for b in range(items.shape[0]):
            scores[b, items[b][mask[b]]] = float("-inf")
    return torch.topk(scores, K, dim=1)


def sessions(n_items: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    items = torch.randint(0, n_items, (6, length), generator=g)  # [B, L]
    items[1, 1:] = items[1, 0]  # one item repeated across the whole session
    mask = torch.ones(6, length, dtype=torch.bool)
    mask[2, : length - 1] = False  # a single real item, left-padded (padding points at rows too)
    return items, torch.ones(6, length, dtype=torch.long), mask


def int8_inputs(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    codes, scales = quantize_items(matrix.numpy())
    return torch.from_numpy(codes), torch.from_numpy(scales)


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
@pytest.mark.parametrize("n_items", [300, 12])  # 12 < K + L: the candidate set is the catalogue
@pytest.mark.parametrize("exclude_seen", [True, False])
def test_candidate_masking_matches_full_masking(n_items: int, exclude_seen: bool, int8: bool) -> None:
    tower = MeanTower().eval()  # ranks a session's own items first: the hardest case for masking
    matrix = torch.from_numpy(item_matrix(n_items))
    bias = torch.zeros(n_items)
    bias[3] = float("-inf")  # an unavailable item
    items, types, mask = sessions(n_items, length=8)
    extra = dict(zip(("item_codes", "item_scales"), int8_inputs(matrix), strict=True)) if int8 else {}
    with torch.no_grad():
        graph = ServingGraph(tower, K, int8=int8)
        scores, rows, _ = graph(items, types, mask, matrix, bias, torch.tensor(exclude_seen), **extra)
    ref_scores, ref_rows = reference_topk(tower, items, types, mask, matrix, bias, exclude_seen)
    torch.testing.assert_close(scores, ref_scores)
    finite = torch.isfinite(ref_scores)
    assert torch.equal(rows[finite], ref_rows[finite])


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
def test_exported_graph_sizes_candidates_by_the_inputs(tmp_path: Path, int8: bool) -> None:
    """The candidate count K + L is computed from input shapes in ONNX, not frozen at export."""
    tower = MeanTower().eval()
    path = tmp_path / "s.onnx"
    export_serving_graph(tower, path, k=K, d=D, session_length=8, int8=int8)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n_items, length in [(300, 8), (300, 3), (9, 8)]:
        matrix = torch.from_numpy(item_matrix(n_items))
        bias = torch.zeros(n_items)
        items, types, mask = sessions(n_items, length, seed=n_items + length)
        scores, rows = session.run(
            ["top_scores", "top_indices"],
            {
                "session_items": items.numpy(),
                "session_types": types.numpy(),
                "session_mask": mask.numpy(),
                "item_matrix": matrix.numpy(),
                "item_bias": bias.numpy(),
            }
            | (dict(zip(INT8_INPUTS, quantize_items(matrix.numpy()), strict=True)) if int8 else {}),
        )
        ref_scores, ref_rows = reference_topk(tower, items, types, mask, matrix, bias, exclude_seen=True)
        np.testing.assert_allclose(scores, ref_scores.numpy(), rtol=1e-5, atol=1e-6)
        finite = np.isfinite(ref_scores.numpy())
        assert np.array_equal(rows[finite], ref_rows.numpy()[finite])


def bonus_inputs(items: torch.Tensor, n_items: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A sparse bonus per session: random rows, one repeated, one on a seen item, one unavailable."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(0, n_items, (items.shape[0], 7), generator=g)  # [B, C]
    rows[:, 1] = rows[:, 0]
    rows[:, 2] = items[:, -1]
    rows[:, 3] = 3
    return rows, 3 * torch.rand(rows.shape, generator=g)


@pytest.mark.parametrize("int8", [False, True], ids=["fp32", "int8"])
@pytest.mark.parametrize("exclude_seen", [True, False])
def test_bonus_is_added_before_masking_and_topk(tmp_path: Path, int8: bool, exclude_seen: bool) -> None:
    """Eager and exported graphs rank model score + bonus (repeats summed, -inf stays -inf)."""
    tower = MeanTower().eval()
    n_items = 300
    matrix = torch.from_numpy(item_matrix(n_items))
    bias = torch.zeros(n_items)
    bias[3] = float("-inf")
    items, types, mask = sessions(n_items, length=8)
    rows, values = bonus_inputs(items, n_items)
    dense = torch.zeros(items.shape[0], n_items).scatter_add(1, rows, values)  # [B, N]
    ref_scores, ref_rows = reference_topk(tower, items, types, mask, matrix, bias + dense, exclude_seen)
    extra = dict(zip(INT8_INPUTS, int8_inputs(matrix), strict=True)) if int8 else {}
    with torch.no_grad():
        graph = ServingGraph(tower, K, int8=int8)
        scores, got, _ = graph(items, types, mask, matrix, bias, torch.tensor(exclude_seen), rows, values, **extra)
    torch.testing.assert_close(scores, ref_scores)
    assert torch.equal(got, ref_rows)
    path = tmp_path / "s.onnx"
    export_serving_graph(tower, path, k=K, d=D, session_length=8, int8=int8)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {
        "session_items": items.numpy(),
        "session_types": types.numpy(),
        "session_mask": mask.numpy(),
        "item_matrix": matrix.numpy(),
        "item_bias": bias.numpy(),
        "exclude_seen": np.array(exclude_seen),
        "bonus_rows": rows.numpy(),
        "bonus_values": values.numpy(),
    } | {k: v.numpy() for k, v in extra.items()}
    onnx_scores, onnx_rows = session.run(["top_scores", "top_indices"], feeds)
    np.testing.assert_allclose(onnx_scores, ref_scores.numpy(), rtol=1e-5, atol=1e-5)
    assert np.array_equal(onnx_rows, ref_rows.numpy())


def test_int8_scores_match_onnxruntime_on_wide_vectors() -> None:
    """onnxruntime's DynamicQuantizeMatMul equals the eager emulation bit for bit on vectors that
    fill the whole uint8 range against full-scale item codes: the case where AVX2's int16 pair sums
    saturate with 8-bit codes (the served int8 candidates would then be wrong on such CPUs)."""
    from onnx import TensorProto, helper

    from streamrec.export.serving_graph import Int8Scores

    d, n = 128, 2000
    node = helper.make_node(
        "DynamicQuantizeMatMul", ["vec", "codes", "scales", "zero", "bias"], ["out"], domain="com.microsoft"
    )
    zero = helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.INT8, [], [0]))
    inputs = [
        helper.make_tensor_value_info("vec", TensorProto.FLOAT, [None, d]),
        helper.make_tensor_value_info("codes", TensorProto.INT8, [d, None]),
        helper.make_tensor_value_info("scales", TensorProto.FLOAT, [None]),
        helper.make_tensor_value_info("bias", TensorProto.FLOAT, [None]),
    ]
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    graph = helper.make_graph([zero, node], "int8_scores", inputs, [out])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    session = ort.InferenceSession(
        helper.make_model(graph, opset_imports=opsets).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    vec = rng.normal(size=(16, d)).astype(np.float32)
    codes, scales = quantize_items(rng.normal(size=(n, d)).astype(np.float32))
    bias = np.zeros(n, np.float32)
    (got,) = session.run(None, {"vec": vec, "codes": codes, "scales": scales, "bias": bias})
    ref = Int8Scores.apply(*(torch.from_numpy(a) for a in (vec, codes, scales, bias))).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * float(np.abs(ref).max()))
