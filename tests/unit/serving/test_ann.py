"""The ANN index path of the runner (streamrec.serving.ann): with every inverted list probed it
must serve what the single graph serves (the same exact scores, masks and bonus), the index ships
checksummed in the artifact, cold-start items go in live, and small catalogues keep the graph."""

from __future__ import annotations

import numpy as np
import pytest
from support.export_artifacts import K, L, build, item_ids, item_matrix

from streamrec.serving.ann import AnnIndex, rescore
from streamrec.serving.artifact import ANN_INDEX, ArtifactError, verify
from streamrec.serving.item_index import EncodedBatch, ItemIndex
from streamrec.serving.registry import LocalRegistry
from streamrec.serving.runner import Runner
from streamrec.settings.serving import ServingSettings

EVERY_LIST = ServingSettings(ann_min_items=1, ann_nprobe=10_000)  # probing every list: exact retrieval


@pytest.fixture(scope="module")
def ann_artifact(tmp_path_factory: pytest.TempPathFactory):
    registry = LocalRegistry(tmp_path_factory.mktemp("ann-registry"))
    return registry.fetch(build(registry, ann_min_items=1).ref.version)


def _sessions(n: int = 40, seed: int = 5) -> tuple[list[list[str]], list[list[str]]]:
    rng = np.random.default_rng(seed)
    sessions = [[item_ids()[r] for r in rng.integers(0, len(item_ids()), size=m)] for m in rng.integers(1, L + 3, n)]
    return sessions, [["click"] * len(s) for s in sessions]


def test_every_list_probed_serves_the_graphs_results_with_bonus_seen_and_withdrawn(ann_artifact) -> None:
    graph, ann = Runner.load(ann_artifact, "cpu"), Runner.load(ann_artifact, "cpu", ann=EVERY_LIST)
    assert graph.ann is None and ann.ann is not None and ann.file_name == "session.onnx"
    sessions, types = _sessions()
    rng = np.random.default_rng(2)
    rows = rng.integers(-1, len(item_ids()), size=(len(sessions), 6))  # repeated rows add up, -1 = padding
    rows[:, 1] = rows[:, 0]
    bonus = (rows, np.where(rows >= 0, rng.random(rows.shape) * 3, 0).astype(np.float32))
    for runner in (graph, ann):
        runner.set_available(item_ids()[:30], False)
    for exclude_seen in (True, False):
        want = graph.recommend(sessions, types, K, exclude_seen, bonus)
        got = ann.recommend(sessions, types, K, exclude_seen, bonus)
        for (ids_a, scores_a), (ids_b, scores_b) in zip(want, got, strict=True):
            assert ids_a == ids_b and not set(ids_b) & set(item_ids()[:30])
            np.testing.assert_allclose(scores_a, scores_b, rtol=1e-5, atol=1e-5)


def test_the_index_ships_checksummed_and_a_changed_one_is_refused(ann_artifact, tmp_path) -> None:
    assert ANN_INDEX in verify(ann_artifact).files
    copy = tmp_path / "v"
    copy.mkdir()
    for f in ann_artifact.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    with (copy / ANN_INDEX).open("r+b") as f:
        f.seek(100)
        f.write(b"\0\1\2")
    with pytest.raises(ArtifactError, match=ANN_INDEX):
        Runner.load(copy, "cpu", ann=EVERY_LIST)


def test_cold_start_items_are_retrievable_at_once_and_withdrawn_ones_are_not(ann_artifact) -> None:
    runner = Runner.load(ann_artifact, "cpu", ann=ServingSettings(ann_min_items=1, ann_nprobe=1))
    items = [item_ids()[r] for r in (30, 31, 32)]
    target = item_matrix()[[30, 31, 32]].mean(axis=0)
    runner.upsert_items(["brand-new"], (target / np.linalg.norm(target) * 5)[None, :])
    [(ids, _)] = runner.recommend([items], [["click"] * 3])
    assert ids[0] == "brand-new"  # in the index, not only in the catalogue: one list probed found it
    runner.set_available(["brand-new"], False)
    assert "brand-new" not in runner.recommend([items], [["click"] * 3])[0][0]
    runner.set_available(["brand-new"], True)
    runner.upsert_items(["brand-new"], -(target / np.linalg.norm(target) * 5)[None, :])  # a new vector
    assert "brand-new" not in runner.recommend([items], [["click"] * 3])[0][0]


def test_small_catalogues_keep_the_single_graph(ann_artifact, registry) -> None:
    assert ANN_INDEX not in verify(registry.fetch(build(registry, ann_min_items=len(item_ids()) + 1).ref.version)).files
    small = Runner.load(ann_artifact, "cpu", int8=True, ann=ServingSettings(ann_min_items=len(item_ids()) + 1))
    assert small.ann is None and small.file_name == "session_int8.onnx"
    assert Runner.load(ann_artifact, "cpu", ann=ServingSettings(ann_min_items=0)).ann is None


def test_replaced_rows_are_held_once_and_zero_vectors_not_at_all() -> None:
    matrix = item_matrix()
    index = AnnIndex.build(matrix)
    index.add(np.array([5, 5, 300]), np.stack([matrix[9], matrix[7], np.zeros(matrix.shape[1], np.float32)]))
    assert index._index.ntotal == len(matrix)  # row 5 replaced (its last vector), the zero row left out
    assert 5 in index.search(matrix[7:8], 2, 10_000)[0]


def test_rescore_drops_rows_the_snapshot_lacks_and_pads_a_short_pool() -> None:
    cat = ItemIndex(item_ids(10), item_matrix(10)).current
    vec = item_matrix(10)[:1]
    batch = EncodedBatch(np.array([[0]]), np.array([[1]]), np.array([[True]]), [0])
    scores, rows = rescore(vec, cat, np.array([[0, 3, 12, -1]]), batch, True, None, 3)
    assert rows[0, 0] == 3 and np.isfinite(scores[0]).tolist() == [True, False, False]
