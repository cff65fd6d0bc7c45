"""Runner: recommendations, the session rule, seen/unavailable masking, cold-start upserts; each
on the fp32 and on the int8-scoring variant."""

from __future__ import annotations

import numpy as np
import pytest
from support.export_artifacts import K, L, item_ids, item_matrix

from streamrec.serving.item_index import ItemIndex, quantize_items
from streamrec.serving.runner import Runner


@pytest.fixture(params=[False, True], ids=["fp32", "int8"])
def runner(artifact, request: pytest.FixtureRequest) -> Runner:
    registry, result = artifact
    return Runner.load(registry.fetch(result.ref.version), "cpu", int8=request.param)


def test_int8_variant_serves_the_fp32_top_k_with_fp32_scores(artifact) -> None:
    registry, result = artifact
    path = registry.fetch(result.ref.version)
    fp32, int8 = Runner.load(path, "cpu"), Runner.load(path, "cpu", int8=True)
    assert (fp32.file_name, int8.file_name) == ("session.onnx", "session_int8.onnx")
    small = Runner.load(path, "cpu", int8=True, int8_min_items=len(item_ids()) + 1)
    assert small.file_name == "session.onnx"  # a catalogue below int8_min_items is served in fp32
    rng = np.random.default_rng(7)
    sessions = [[item_ids()[r] for r in rng.integers(0, len(item_ids()), size=n)] for n in rng.integers(1, L + 3, 200)]
    types = [["click"] * len(s) for s in sessions]
    for (ids_a, scores_a), (ids_b, scores_b) in zip(
        fp32.recommend(sessions, types), int8.recommend(sessions, types), strict=True
    ):
        assert ids_a == ids_b
        np.testing.assert_allclose(scores_a, scores_b, rtol=1e-5, atol=1e-6)


def _session(rows: list[int]) -> tuple[list[str], list[str]]:
    return [item_ids()[r] for r in rows], ["click"] * len(rows)


def test_recommend_returns_k_ids_best_first_without_seen(runner: Runner) -> None:
    items, types = _session([1, 2, 3])
    [(ids, scores)] = runner.recommend([items], [types], k=5)
    assert len(ids) == 5 and scores == sorted(scores, reverse=True)
    assert not set(ids) & set(items)
    [(ids_all, _)] = runner.recommend([items], [types], k=5, exclude_seen=False)
    assert set(ids_all) & set(items)  # a mean-of-items tower ranks its own items first


def test_unknown_items_are_skipped_and_empty_sessions_get_nothing(runner: Runner) -> None:
    items, types = _session([4, 5])
    with_unknown = ([items[0], "nope", items[1]], ["click", "click", "click"])
    out = runner.recommend([items, with_unknown[0], ["nope"], []], [types, with_unknown[1], ["view"], []])
    assert out[0] == out[1]
    assert out[2] == ([], []) and out[3] == ([], [])


def test_padding_width_does_not_change_results(runner: Runner) -> None:
    short = _session([7, 8])
    long = _session(list(range(20, 20 + L + 5)))  # longer than L: the newest L are kept
    alone = runner.recommend([short[0]], [short[1]])[0]
    batched = runner.recommend([short[0], long[0]], [short[1], long[1]])[0]
    assert alone[0] == batched[0]
    np.testing.assert_allclose(alone[1], batched[1], rtol=1e-5, atol=1e-6)


def test_unavailable_items_never_come_back_and_can_return(runner: Runner) -> None:
    items, types = _session([10, 11])
    [(before, _)] = runner.recommend([items], [types])
    runner.set_available(before[:3], False)
    [(after, _)] = runner.recommend([items], [types])
    assert not set(after) & set(before[:3]) and len(after) == K
    runner.set_available(before[:3], True)
    assert runner.recommend([items], [types])[0][0] == before


def test_cold_start_item_is_recommended_without_reexport(runner: Runner) -> None:
    items, types = _session([30, 31, 32])
    target = item_matrix()[[30, 31, 32]].mean(axis=0)
    runner.upsert_items(["brand-new"], (target / np.linalg.norm(target) * 5)[None, :])
    [(ids, _)] = runner.recommend([items], [types])
    assert ids[0] == "brand-new"
    runner.set_available(["brand-new"], False)
    assert "brand-new" not in runner.recommend([items], [types])[0][0]
    # the new item can also be part of a session now
    assert runner.recommend([["brand-new"]], [["click"]])[0][0]


def test_k_above_the_exported_k_is_an_error(runner: Runner) -> None:
    with pytest.raises(ValueError, match="exported with K"):
        runner.recommend([["item-1"]], [["click"]], k=K + 1)
    with pytest.raises(ValueError, match="event type"):
        runner.recommend([["item-1"]], [["like"]])


def test_upserts_keep_the_int8_codes_equal_to_quantizing_the_whole_matrix() -> None:
    """An upsert re-quantizes only the rows it writes; the result must be what quantizing the
    grown matrix from scratch gives."""
    index = ItemIndex(item_ids(), item_matrix(), quantize=True)
    rng = np.random.default_rng(3)
    index.upsert(["new-a", "new-b", item_ids()[5]], rng.standard_normal((3, item_matrix().shape[1])) * 4)
    index.set_available(["new-a"], False)
    index.upsert(["new-c", "new-a"], rng.standard_normal((2, item_matrix().shape[1])))
    cat = index.current
    codes, scales = quantize_items(cat.matrix)
    assert cat.codes is not None and cat.scales is not None
    np.testing.assert_array_equal(cat.codes, codes)
    np.testing.assert_array_equal(cat.scales, scales)
    np.testing.assert_array_equal(cat.codes_value.numpy(), codes)  # type: ignore[union-attr]


FILES = {"session.onnx": "a", "session_fp16.onnx": "b", "session_int8.onnx": "c"}


@pytest.mark.parametrize(
    "device,fp16,int8,files,want",
    [
        ("cuda", True, False, FILES, "session_fp16.onnx"),
        ("cuda", True, False, {"session.onnx": "a"}, "session.onnx"),  # exported without the fp16 variant
        ("cpu", True, False, FILES, "session.onnx"),  # fp16 is for CUDA only
        ("cuda", False, True, FILES, "session.onnx"),  # int8 is for the CPU only
        ("cpu", False, True, FILES, "session_int8.onnx"),
        ("cpu", False, False, FILES, "session.onnx"),
    ],
)
def test_serving_file_follows_the_device_and_the_precision_settings(device, fp16, int8, files, want) -> None:
    from streamrec.serving.artifact import ArtifactMeta
    from streamrec.serving.variants import serving_file

    meta = ArtifactMeta("v", None, 0.0, 5, 8, 16, 30_000, files)
    name, why = serving_file(meta, device, fp16=fp16, int8=int8, int8_min_items=20_000)
    assert name == want
    assert bool(why) == (name == "session.onnx" and (fp16 or int8)), "a variant asked for and not served says why"
    assert serving_file(meta, "cpu", int8=True, int8_min_items=40_000)[0] == "session.onnx"  # a small catalogue


def test_the_catalogue_is_bound_once_on_the_runner_device(runner: Runner) -> None:
    """IO binding: the item matrix is an OrtValue on the serving device (the GPU's memory on
    CUDA, the same path on the CPU), reused by every call until the catalogue changes."""
    cat = runner._index.current
    assert cat.matrix_value.device_name() == runner.device == "cpu"
    runner.recommend([item_ids()[:2]], [["click", "click"]])
    assert runner._index.current.matrix_value is cat.matrix_value
    runner.upsert_items(["brand-new"], np.ones((1, runner.d), np.float32))
    assert runner._index.current.matrix_value is not cat.matrix_value
