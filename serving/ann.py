"""Approximate nearest-neighbour retrieval for large catalogues: the artifact's faiss index, items
added to it live, and the exact re-score of the candidates it returns.

From ``serving.ann_min_items`` items a batch is served in three steps (:meth:`AnnScorer.run`):

1. session vectors from the artifact's own parity-checked serving graph, bound to a
   sub-catalogue of just the batch's session items: its scoring part then costs B x (B L) dot
   products instead of B x N, and no second file has to be exported and checked;
2. the index returns ``ann_candidates`` rows per session (``ann_nprobe`` inverted lists scanned);
3. the pool, those rows plus the session's co-occurrence bonus rows, is re-scored the way the
   graph scores: dot product + item bias (-inf = withdrawn) + bonus, seen items -inf, top K.
   Retrieval is approximate; every returned score is exact.

Why faiss IVF with 8-bit codes (``IVF<nlist>,SQ8``; measured in bench/RESULTS.md, ANN): its
build is a k-means over a sample plus one centroid assignment per item, so the exporter builds
1M items in tens of seconds where an HNSW graph took minutes; a new item is one centroid
assignment, so cold-start items go in live without a rebuild; the codes take a quarter of the
item matrix (128 MB at 1M x 128). hnswlib ships no wheels for this Python; usearch's HNSW built
2-3x slower than faiss's. Multi-interest towers (M > 1) are not served through the index.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from streamrec.serving.artifact import ArtifactError, ArtifactMeta
from streamrec.serving.item_index import Catalogue, EncodedBatch
from streamrec.settings.serving import ServingSettings

if TYPE_CHECKING:
    import faiss

SparseBonus = tuple[np.ndarray, np.ndarray]  # rows int64 [B, C] (-1 = padding), values float32 [B, C]
# faiss warns below 39 training points per centroid. 4 sqrt(N) lists (4,000 at 1M, ~250 items each);
# k-means trains on 40 points per list, not faiss's up to 256: at 1M x 128 with 4,096 lists, 64 per
# list (262k points) already took 140-170 s of a 210-230 s build on these 2 cores.
_POINTS_PER_LIST = _TRAIN_PER_LIST = 40


def _faiss() -> ModuleType:
    """faiss, imported where an index is built or loaded: processes that never serve one skip its
    ~0.3 s import; and its loader's four INFO lines (it tries an AVX2 build this wheel lacks, then
    the generic one, which dispatches to AVX2 itself) are silenced, they broke the CLI's one-line errors."""
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    import faiss

    return faiss


def n_lists(n: int) -> int:
    """Inverted lists for ``n`` items: 4 sqrt(n), at most one per 40 items, at least 1."""
    return max(1, min(round(4 * math.sqrt(n)), n // _POINTS_PER_LIST))


def _nonzero(vectors: np.ndarray) -> np.ndarray:
    """Rows worth indexing: an all-zero vector (an item known only from events) scores 0 against
    every session and ranks only through its bonus, which puts it in the pool anyway."""
    return np.flatnonzero(np.abs(vectors).max(axis=1) > 0) if len(vectors) else np.zeros(0, np.int64)


class AnnIndex:
    """A faiss IVF index over catalogue rows (faiss ids = rows). Thread-safe: the scoring thread
    searches while the catalogue follower adds; faiss itself is not safe for that."""

    def __init__(self, index: faiss.IndexIVF, rows_held: int) -> None:
        self._index, self._lock = index, threading.Lock()
        self._rows_held = rows_held  # 1 + the largest row ever added: rows below may need removing

    @classmethod
    def build(cls, matrix: np.ndarray, seed: int = 0) -> AnnIndex:
        """Train the lists on a sample of ``matrix`` [N, d] and add every non-zero row."""
        n, d = matrix.shape
        lists, faiss = n_lists(n), _faiss()
        index = faiss.index_factory(d, f"IVF{lists},SQ8", faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        sample = np.random.default_rng(seed).choice(n, min(n, _TRAIN_PER_LIST * lists), replace=False)
        index.train(np.ascontiguousarray(matrix[np.sort(sample)]))
        out = cls(index, 0)
        out.add(np.arange(n, dtype=np.int64), matrix)
        return out

    @classmethod
    def load(cls, path: Path, meta: ArtifactMeta) -> AnnIndex:
        """The index file of a verified artifact, checked against its meta."""
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise ArtifactError(f"artifact {path.parent}: faiss cannot read {path.name}: {exc}") from None
        if not isinstance(index, faiss.IndexIVF) or index.d != meta.d or index.ntotal > meta.n_items:
            raise ArtifactError(
                f"artifact {path.parent}: {path.name} holds {index.ntotal} x d={index.d}, "
                f"the catalogue {meta.n_items} x d={meta.d}"
            )
        return cls(index, meta.n_items)

    def save(self, path: Path) -> None:
        with self._lock:
            _faiss().write_index(self._index, str(path))

    @property
    def lists(self) -> int:
        return self._index.nlist

    def add(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Index ``vectors`` [n, d] under catalogue ``rows`` [n], replacing what those rows held (the
        last vector wins for a repeated row); all-zero vectors are left out (:func:`_nonzero`)."""
        rows = np.asarray(rows, np.int64)
        last = len(rows) - 1 - np.unique(rows[::-1], return_index=True)[1]  # each row's last vector
        rows, vectors = rows[last], np.asarray(vectors, np.float32)[last]
        keep = _nonzero(vectors)
        with self._lock:
            old = rows[rows < self._rows_held]
            if len(old):  # a scan of every list: only for replaced vectors, never for new items
                self._index.remove_ids(old)
            self._index.add_with_ids(np.ascontiguousarray(vectors[keep]), rows[keep])
            self._rows_held = max(self._rows_held, int(rows.max(initial=-1)) + 1)

    def search(self, queries: np.ndarray, k: int, nprobe: int) -> np.ndarray:
        """Rows [B, k] int64 of the best ``k`` items per query by approximate dot product (-1 where
        the probed lists held fewer)."""
        params = _faiss().SearchParametersIVF(nprobe=min(nprobe, self._index.nlist))
        with self._lock:
            return self._index.search(np.ascontiguousarray(queries, np.float32), k, params=params)[1]


def session_vectors(session: ort.InferenceSession, batch: EncodedBatch, matrix: np.ndarray, k: int) -> np.ndarray:
    """Session vectors [B, d] by the serving graph, bound to the batch's own items only (padded with
    zero rows to the file's ``k``: its TopK needs that many)."""
    rows, local = np.unique(batch.items, return_inverse=True)
    sub = np.zeros((max(len(rows), k), matrix.shape[1]), np.float32)  # [n_sub, d]
    sub[: len(rows)] = matrix[rows]
    feeds = {
        "session_items": local.reshape(batch.items.shape).astype(np.int64),
        "session_types": batch.types,
        "session_mask": batch.mask,
        "item_matrix": sub,
        "item_bias": np.zeros(len(sub), np.float32),
        "exclude_seen": np.array(False),
    }
    return session.run(["session_vec"], feeds)[0]


def rescore(
    vec: np.ndarray,
    cat: Catalogue,
    candidates: np.ndarray,
    batch: EncodedBatch,
    exclude_seen: bool,
    bonus: SparseBonus | None,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores [B, k] float32 best first, rows [B, k] int64) of each session's pool:
    ``candidates`` [B, C] (-1 = none) plus its bonus rows, deduplicated, scored exactly as the
    serving graph scores (``vec`` [B, d]); -inf fills rows past a short pool. Vectorised over the
    batch: every (session, row) pair is one key ``session * N + row``."""
    b, n = len(vec), len(cat.ids)
    owner = np.repeat(np.arange(b, dtype=np.int64), candidates.shape[1])
    flat = candidates.ravel()
    keys = owner * n + flat  # rows >= n: added to the index after this batch's catalogue snapshot
    keys = keys[(flat >= 0) & (flat < n)]
    bonus_keys = bonus_values = None
    if bonus is not None and bonus[0].size:
        rows, values = bonus
        hit = (rows >= 0) & (rows < n)
        bonus_keys = (np.repeat(np.arange(b, dtype=np.int64), rows.shape[1]) * n + rows.ravel())[hit.ravel()]
        bonus_values = values.ravel()[hit.ravel()]
        keys = np.concatenate([keys, bonus_keys])
    keys = np.unique(keys)  # sorted: by session, then row
    who, row = np.divmod(keys, n)
    scores = np.einsum("nd,nd->n", cat.matrix[row], vec[who]) + cat.bias[row]  # [P]
    if bonus_keys is not None:  # repeated rows add up, as the graph's scatter-add
        scores += np.bincount(np.searchsorted(keys, bonus_keys), bonus_values, len(keys)).astype(np.float32)
    if exclude_seen:
        seen = np.repeat(np.arange(b, dtype=np.int64), batch.items.shape[1]) * n + batch.items.ravel()
        scores[np.isin(keys, seen[batch.mask.ravel()])] = -np.inf
    start = np.searchsorted(who, np.arange(b))
    pos = np.arange(len(keys)) - start[who]  # place of each pair within its session
    width = max(k, int(pos.max(initial=0)) + 1)
    grid = np.full((b, width), -np.inf, np.float32)
    grid_rows = np.zeros((b, width), np.int64)
    grid[who, pos], grid_rows[who, pos] = scores, row
    top = np.argpartition(-grid, k - 1, axis=1)[:, :k]  # [B, k], unordered
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(grid, top, 1), axis=1, kind="stable"), 1)
    return np.take_along_axis(grid, top, 1), np.take_along_axis(grid_rows, top, 1)


class AnnScorer:
    """The serving graph's session vectors, the index's candidates and their exact re-score: the
    runner's scoring from ``serving.ann_min_items`` items."""

    def __init__(self, session: ort.InferenceSession, index: AnnIndex, settings: ServingSettings, graph_k: int) -> None:
        self.session, self.index, self.settings = session, index, settings
        self.graph_k = graph_k  # the file's K: its TopK needs that many items bound

    def run(
        self, batch: EncodedBatch, cat: Catalogue, exclude_seen: bool, bonus: SparseBonus | None, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """What the graph returns for ``batch`` (scores, rows [B, k]), through the index. A pool of
        ``k`` + the batch's session width can lose every seen item and still hold ``k``."""
        vec = session_vectors(self.session, batch, cat.matrix, self.graph_k)  # [B, d]
        pool = min(max(self.settings.ann_candidates, k + batch.items.shape[1]), len(cat.ids))
        candidates = self.index.search(vec, pool, self.settings.ann_nprobe)  # [B, pool]
        return rescore(vec, cat, candidates, batch, exclude_seen, bonus, k)
