"""The runner's catalogue: item id <-> row, the item matrix and availability bias as bound tensors.

Readers take one immutable :class:`Catalogue` snapshot per batch, so a batch is scored against
one consistent catalogue even while items are upserted; writers build a new snapshot and
publish it with a single reference assignment. An upsert copies the matrix (copy-on-write:
25.6 MB at 50k x 128, ~5 ms here), which is fine for cold-start items arriving in seconds and
in batches; ``set_available`` copies only the bias (200 KB at 50k).

Session rule (documented in serving/README.md): item ids the catalogue does not know are
skipped, the newest ``L`` known items are kept, left-padded; a session with no known item gets
an empty recommendation rather than a guess.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import onnxruntime as ort

from streamrec.contracts.session_rows import TYPE_INDEX, left_pad

Quantized = tuple[np.ndarray, np.ndarray]  # int8 codes [d, N], float32 scales [N]


CODE_PEAK = 63  # largest |int8 code|: see quantize_items


def quantize_items(matrix: np.ndarray) -> Quantized:
    """Symmetric int8 codes per item for the int8 serving variant: ``codes`` [d, N] (transposed:
    the integer matmul has no transpose flag) and ``scales`` [N] float32, so that
    ``matrix[n] ~= codes[:, n] * scales[n]``. A per-item scale keeps a short vector as precise as
    a long one; an all-zero row gets scale 1.

    Codes span 7 bits (+-63), not 8: on x86 CPUs with AVX2 but without VNNI, onnxruntime's u8 x s8
    kernel (VPMADDUBSW) sums pairs of products into int16 and saturates above 32767; 2 x 255 x 127
    overflows it and the served candidates are silently wrong (a 16% score error measured on an
    AVX2-only EPYC), while 2 x 255 x 63 = 32130 never does. The candidates are re-scored in fp32,
    so the lost bit costs only candidate recall."""
    matrix = np.asarray(matrix, dtype=np.float32)
    peak = np.abs(matrix).max(axis=1) if matrix.size else np.zeros(len(matrix), np.float32)
    scales = np.where(peak > 0, peak / CODE_PEAK, 1.0).astype(np.float32)
    codes = np.rint(matrix / scales[:, None]).clip(-CODE_PEAK, CODE_PEAK).astype(np.int8)
    return np.ascontiguousarray(codes.T), scales


@dataclass(frozen=True)
class Catalogue:
    """One immutable catalogue version. The ``*_value`` tensors live on the serving device;
    ``codes``/``scales`` (see :func:`quantize_items`) and their values only when the index
    quantizes."""

    ids: list[str]
    rows: dict[str, int]
    matrix: np.ndarray  # [N, d] float32
    bias: np.ndarray  # [N] float32, 0 = available, -inf = not
    matrix_value: ort.OrtValue
    bias_value: ort.OrtValue
    codes: np.ndarray | None = None  # [d, N] int8
    scales: np.ndarray | None = None  # [N] float32
    codes_value: ort.OrtValue | None = None
    scales_value: ort.OrtValue | None = None


@dataclass(frozen=True)
class EncodedBatch:
    """Sessions as graph inputs; ``keep`` = indices of the input sessions that have a known item."""

    items: np.ndarray  # [B', L] int64 rows
    types: np.ndarray  # [B', L] int64
    mask: np.ndarray  # [B', L] bool
    keep: list[int]


class ItemIndex:
    """Mutable holder of :class:`Catalogue` snapshots bound on ``device`` ("cpu" or "cuda");
    with ``quantize`` every snapshot also carries the int8 codes of its matrix. The codes are
    per item, so an upsert quantizes only the rows it writes and copies the rest (quantizing
    all 50k x 128 rows took ~27 ms, four times the rest of an upsert)."""

    def __init__(
        self, ids: Sequence[str], matrix: np.ndarray, device: str = "cpu", device_id: int = 0, quantize: bool = False
    ) -> None:
        self._device, self._device_id, self._quantize = device, device_id, quantize
        self._lock = threading.Lock()
        self._unavailable: set[str] = set()
        ids = list(ids)
        self._current = self._build(ids, np.ascontiguousarray(matrix, dtype=np.float32), np.zeros(len(ids), np.float32))

    @property
    def current(self) -> Catalogue:
        return self._current

    @property
    def unavailable(self) -> frozenset[str]:
        return frozenset(self._unavailable)

    def _build(
        self, ids: list[str], matrix: np.ndarray, bias: np.ndarray, quantized: Quantized | None = None
    ) -> Catalogue:
        """A snapshot; ``quantized`` = the codes and scales of ``matrix`` when already known."""
        rows = {item: row for row, item in enumerate(ids)}
        mv = ort.OrtValue.ortvalue_from_numpy(matrix, self._device, self._device_id)
        bv = ort.OrtValue.ortvalue_from_numpy(bias, self._device, self._device_id)
        if not self._quantize:
            return Catalogue(ids, rows, matrix, bias, mv, bv)
        codes, scales = quantized if quantized is not None else quantize_items(matrix)
        cv = ort.OrtValue.ortvalue_from_numpy(codes, self._device, self._device_id)
        sv = ort.OrtValue.ortvalue_from_numpy(scales, self._device, self._device_id)
        return Catalogue(ids, rows, matrix, bias, mv, bv, codes, scales, cv, sv)

    @staticmethod
    def _requantized(cur: Catalogue, matrix: np.ndarray, written: list[int]) -> Quantized | None:
        """``cur``'s codes and scales grown to ``matrix``, with the ``written`` rows quantized
        afresh: the same as :func:`quantize_items` of the whole matrix, the other rows copied."""
        if cur.codes is None or cur.scales is None:
            return None
        n, old = matrix.shape[0], cur.scales.shape[0]
        codes = np.empty((matrix.shape[1], n), np.int8)  # [d, N]
        scales = np.empty(n, np.float32)  # [N]
        codes[:, :old], scales[:old] = cur.codes, cur.scales
        rows = sorted(set(written))
        codes[:, rows], scales[rows] = quantize_items(matrix[rows])
        return codes, scales

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> int:
        """Add new items (appended rows) or replace the vectors of known ones; returns how many
        were new. New items are available unless marked otherwise before."""
        vectors = np.asarray(vectors, dtype=np.float32)
        with self._lock:
            cur = self._current
            if vectors.shape != (len(ids), cur.matrix.shape[1]):
                raise ValueError(f"vectors {vectors.shape} do not match {len(ids)} ids x d={cur.matrix.shape[1]}")
            new_ids = [i for i in dict.fromkeys(ids) if i not in cur.rows]
            all_ids = cur.ids + new_ids
            rows = {**cur.rows, **{item: len(cur.ids) + n for n, item in enumerate(new_ids)}}
            matrix = np.empty((len(all_ids), cur.matrix.shape[1]), np.float32)
            matrix[: len(cur.ids)] = cur.matrix
            written = [rows[i] for i in ids]
            matrix[written] = vectors  # last vector wins for a repeated id
            bias = np.concatenate([cur.bias, np.zeros(len(new_ids), np.float32)])
            for item in new_ids:
                if item in self._unavailable:
                    bias[rows[item]] = -np.inf
            self._current = self._build(all_ids, matrix, bias, self._requantized(cur, matrix, written))
            return len(new_ids)

    def set_available(self, ids: Sequence[str], flag: bool) -> None:
        """Mark items (un)available; remembered for ids not in the catalogue yet."""
        with self._lock:
            cur = self._current
            (self._unavailable.difference_update if flag else self._unavailable.update)(ids)
            bias = cur.bias.copy()
            known = [cur.rows[i] for i in ids if i in cur.rows]
            bias[known] = 0.0 if flag else -np.inf
            self._current = replace(
                cur, bias=bias, bias_value=ort.OrtValue.ortvalue_from_numpy(bias, self._device, self._device_id)
            )


def encode_sessions(
    catalogue: Catalogue,
    sessions: Sequence[Sequence[str]],
    types: Sequence[Sequence[str]],
    session_length: int,
    trim: bool = False,
) -> EncodedBatch:
    """Map item ids to rows and type names to indices; keep the newest ``session_length`` known
    items, left-padded (newest at the last position). Unknown items are skipped; unknown types raise.
    ``trim`` pads to the longest session of the batch instead of ``session_length``."""
    if len(sessions) != len(types):
        raise ValueError(f"{len(sessions)} sessions but {len(types)} type lists")
    rows_of = catalogue.rows
    encoded: list[tuple[list[int], list[int]]] = []
    keep: list[int] = []
    for n, (items, kinds) in enumerate(zip(sessions, types, strict=True)):
        if len(items) != len(kinds):
            raise ValueError(f"session {n}: {len(items)} items but {len(kinds)} types")
        try:
            pairs = [(rows_of[i], TYPE_INDEX[t]) for i, t in zip(items, kinds, strict=True) if i in rows_of][
                -session_length:
            ]
        except KeyError as exc:
            raise ValueError(f"session {n}: event type {exc.args[0]!r} is not one of {list(TYPE_INDEX)}") from None
        if pairs:
            encoded.append(([p[0] for p in pairs], [p[1] for p in pairs]))
            keep.append(n)
    # ``trim``: the session tower embeds positions by recency (0 = newest), so a batch padded only
    # to its longest session means the same as one padded to L, and 5-item sessions cost 1/10th.
    width = max(len(r) for r, _ in encoded) if trim and encoded else session_length
    out_items, out_mask = left_pad([r for r, _ in encoded], width)
    out_types, _ = left_pad([t for _, t in encoded], width)
    return EncodedBatch(out_items, out_types, out_mask, keep)
