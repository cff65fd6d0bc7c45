"""Export + parity on a tiny model: the checks the exporter runs, and that a failure writes nothing."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from support.export_artifacts import N_ITEMS, D, K, L, NaNTower, build, item_ids, item_matrix

from streamrec.export.exporter import export_model
from streamrec.export.parity import ParityError
from streamrec.serving.artifact import META_JSON, verify
from streamrec.serving.registry import LocalRegistry
from streamrec.serving.signature import OUTPUT_NAMES, REQUIRED_INPUTS


def test_export_writes_a_verified_artifact_with_parity_numbers(artifact) -> None:
    registry, result = artifact
    meta = verify(registry.fetch(result.ref.version))
    report = meta.parity["fp32"]
    assert report["passed"] and report["untied_topk_overlap"] == 1.0
    assert report["max_abs_err_embedding"] < 1e-5
    assert report["sessions"] >= 25
    assert (meta.k, meta.session_length, meta.d, meta.n_items) == (K, L, D, N_ITEMS)
    assert [r.version for r in registry.list()] == [result.ref.version]


def test_onnx_file_has_contract_names_and_dynamic_axes(artifact) -> None:
    registry, result = artifact
    sess = ort.InferenceSession(str(registry.fetch(result.ref.version) / "session.onnx"))
    assert [i.name for i in sess.get_inputs()] == list(REQUIRED_INPUTS)
    assert [o.name for o in sess.get_outputs()] == list(OUTPUT_NAMES)
    # batch 3, sequence 5 (not the traced 2 x L) and a catalogue of 50 rows all run
    rng = np.random.default_rng(1)
    feeds = {
        "session_items": rng.integers(0, 50, (3, 5)),
        "session_types": np.ones((3, 5), np.int64),
        "session_mask": np.ones((3, 5), bool),
        "item_matrix": item_matrix(50),
        "item_bias": np.zeros(50, np.float32),
    }
    scores, idx, vec = sess.run(None, feeds)
    assert scores.shape == (3, K) and idx.shape == (3, K) and vec.shape == (3, D)
    # exclude_seen defaults to True: no session item comes back
    for row in range(3):
        assert not set(idx[row]) & set(feeds["session_items"][row])


@pytest.mark.parametrize("filter_mix", [0.0, 0.5])  # attention, and attention + causal filter
def test_real_session_tower_exports_with_parity(registry: LocalRegistry, filter_mix: float) -> None:
    from streamrec.encoder.model import ModelConfig, Recommender

    torch.manual_seed(0)
    model = Recommender(ModelConfig(d=D, n_heads=2, session_length=L, n_items=N_ITEMS, filter_mix=filter_mix)).eval()
    sessions = [(item_ids()[:3], ["click", "view", "cart"]), (item_ids()[5:25], ["click"] * 20)]
    result = export_model(
        model.session, item_ids(), item_matrix(), registry, k=K, session_length=L, fp16=True, real_sessions=sessions
    )
    by_variant = {r.variant: r for r in result.parity}
    assert by_variant["fp32"].passed and by_variant["fp32"].max_abs_err_embedding < 1e-5
    assert by_variant["fp16"].passed and by_variant["fp16"].untied_topk_overlap == 1.0
    assert by_variant["int8"].passed and by_variant["int8"].untied_topk_overlap == 1.0
    assert by_variant["int8"].max_abs_err_scores < 1e-4  # candidates re-scored in fp32
    files = verify(registry.fetch(result.ref.version)).files
    assert "session_fp16.onnx" in files and "session_int8.onnx" in files


def test_failing_parity_writes_nothing(registry: LocalRegistry) -> None:
    with pytest.raises(ParityError, match="NaN"):
        build(registry, NaNTower())
    assert registry.list() == []
    assert not [p for p in registry.root.iterdir() if (p / META_JSON).exists()]
    assert not list(registry.root.glob(".staging-*"))


@pytest.mark.parametrize(("pool", "exported"), [(1, K), (4, 4 * K), (100, N_ITEMS)])
def test_the_file_returns_the_candidate_pool_capped_at_the_catalogue(
    registry: LocalRegistry, pool: int, exported: int
) -> None:
    result = build(registry, pool=pool, int8=False)
    assert verify(registry.fetch(result.ref.version)).k == exported
