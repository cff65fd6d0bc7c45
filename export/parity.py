"""Parity check of an exported file against eager PyTorch, run at every export.

Done the way optimum validates its exports: load the written file with onnxruntime (not the
in-memory graph), check input/output names and that the batch, sequence and catalogue axes are
symbolic, run golden inputs (random sessions of every length, a shorter sequence axis, a batch
of 1, some items unavailable, seen-masking on and off, plus real sessions when given) and
compare with the eager ``ServingGraph``: max abs error on session embeddings and top scores,
and top-K overlap, which must be 100% for every item whose score is not tied (within the
measured numeric error) with the K-th. A failing artifact is never published.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from streamrec.export.serving_graph import ServingGraph
from streamrec.serving.artifact import ArtifactError
from streamrec.serving.item_index import quantize_items
from streamrec.serving.signature import INT8_INPUTS, OUTPUT_NAMES, check_signature, session_options


class ParityError(ArtifactError):
    """The exported file does not reproduce eager PyTorch; the artifact is not written."""


@dataclass(frozen=True)
class Tolerance:
    """fp32: errors measured here are ~1e-6 on embeddings; 1e-4 leaves room for other CPUs' kernels.
    fp16: 10 mantissa bits give ~1e-3 relative error per op, a few e-3 after two layers."""

    embedding_atol: float
    score_rtol: float  # relative to the largest |score| in the batch

    @classmethod
    def for_variant(cls, variant: str) -> Tolerance:
        """int8 ranks by int8 scores but returns exact fp32 scores of its candidates: fp32's."""
        return cls(5e-2, 1e-2) if variant == "fp16" else cls(1e-4, 1e-5)


@dataclass(frozen=True)
class ParityReport:
    variant: str
    sessions: int
    max_abs_err_embedding: float
    max_abs_err_scores: float
    topk_overlap: float  # mean |torch top-K ∩ onnx top-K| / K over all sessions
    untied_topk_overlap: float  # the same, counting only items not tied with the K-th; must be 1.0
    passed: bool
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GoldenCase:
    items: np.ndarray  # [B, L] int64 rows
    types: np.ndarray  # [B, L] int64
    mask: np.ndarray  # [B, L] bool
    bias: np.ndarray  # [N] float32
    exclude_seen: bool
    bonus_rows: np.ndarray = field(default_factory=lambda: np.zeros((1, 0), np.int64))  # [B, C]
    bonus_values: np.ndarray = field(default_factory=lambda: np.zeros((1, 0), np.float32))  # [B, C]


def golden_cases(
    n_items: int, length: int, real: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] = (), seed: int = 0
) -> list[GoldenCase]:
    """Random sessions (lengths 1..L, left-padded), batch 1, a sequence axis shorter than L, 1% of
    items unavailable, seen-masking on and off, a co-occurrence bonus (repeated rows, some on
    unavailable or seen items); plus ``real`` (items, types, mask) batches."""
    rng = np.random.default_rng(seed)

    def batch(b: int, seq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        items = rng.integers(0, n_items, size=(b, seq), dtype=np.int64)
        types = rng.integers(1, 5, size=(b, seq), dtype=np.int64)
        lengths = rng.integers(1, seq + 1, size=b)
        lengths[0] = seq
        mask = np.arange(seq)[None, :] >= (seq - lengths)[:, None]
        return np.where(mask, items, 0), np.where(mask, types, 0), mask

    bias = np.zeros(n_items, np.float32)
    bias[rng.choice(n_items, size=max(1, n_items // 100), replace=False)] = -np.inf
    none_off = np.zeros(n_items, np.float32)
    cases = [
        GoldenCase(*batch(16, length), bias, True),
        GoldenCase(*batch(1, length), none_off, True),
        GoldenCase(*batch(8, max(2, length // 3)), bias, False),
    ]
    items, types, mask = batch(16, length)
    rows = rng.integers(0, n_items, size=(16, 24), dtype=np.int64)
    rows[:, :4] = items[:, -4:]  # bonus on seen items: masked all the same
    rows[:, 4] = rows[:, 5]  # a repeated row adds up
    cases.append(GoldenCase(items, types, mask, bias, True, rows, rng.uniform(0, 2, rows.shape).astype(np.float32)))
    cases += [GoldenCase(i, t, m, bias, True) for i, t, m in real]
    return cases


def _overlap(ref_scores: np.ndarray, ref_idx: np.ndarray, got_idx: np.ndarray, tie_tol: float) -> tuple[float, float]:
    k = ref_idx.shape[1]
    total, untied_ok = 0.0, 0
    for r in range(ref_idx.shape[0]):
        got = set(got_idx[r].tolist())
        total += len(got & set(ref_idx[r].tolist())) / k
        kth = ref_scores[r, -1]
        # Items clearly inside the top-K (above the K-th by more than the numeric error) must be
        # there; below-K-th items near the boundary may legitimately swap with tied ones.
        clear = {int(i) for i, s in zip(ref_idx[r], ref_scores[r], strict=True) if s > kth + tie_tol}
        untied_ok += clear <= got
    n = max(1, ref_idx.shape[0])
    return total / n, untied_ok / n


def check_parity(
    path: Path,
    tower: nn.Module,
    item_matrix: np.ndarray,
    k: int,
    cases: Sequence[GoldenCase],
    variant: str = "fp32",
) -> ParityReport:
    """Compare the ONNX file at ``path`` (``variant`` fp32, fp16 or int8) with eager torch on
    ``cases``; never raises for a mismatch (the report says why), only for files onnxruntime
    cannot load."""
    tol = Tolerance.for_variant(variant)
    session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    problem = check_signature(session, int8=variant == "int8")
    if problem:
        return ParityReport(variant, 0, float("nan"), float("nan"), 0.0, 0.0, False, problem)
    graph = ServingGraph(tower.eval(), k).eval()  # the reference is always eager fp32
    multi_interest = getattr(tower, "interest", None) is not None  # SessionTower with M > 1
    matrix_t = torch.from_numpy(np.ascontiguousarray(item_matrix, dtype=np.float32))
    int8_inputs: dict[str, np.ndarray] = {}
    if variant == "int8":
        int8_inputs = dict(zip(INT8_INPUTS, quantize_items(item_matrix), strict=True))
    emb_err = score_err = 0.0
    overlaps: list[tuple[float, float, int]] = []
    reason = ""
    n_sessions = 0
    for case in cases:
        feeds = {
            "session_items": case.items,
            "session_types": case.types,
            "session_mask": case.mask,
            "item_matrix": matrix_t.numpy(),
            "item_bias": case.bias,
            "exclude_seen": np.array(case.exclude_seen),
            "bonus_rows": case.bonus_rows,
            "bonus_values": case.bonus_values,
        }
        with torch.no_grad():
            ref = graph(*(torch.from_numpy(v) for v in feeds.values()))
        feeds |= int8_inputs
        got_scores, got_idx, got_vec = session.run(list(OUTPUT_NAMES), feeds)
        ref_scores, ref_idx, ref_vec = (t.numpy() for t in ref)
        b = case.items.shape[0]
        n_sessions += b
        if got_scores.shape != (b, k) or got_idx.shape != (b, k) or got_vec.shape != ref_vec.shape:
            reason = reason or f"output shapes {got_scores.shape}/{got_idx.shape}/{got_vec.shape} for batch {b}, K={k}"
            continue
        if not (np.isfinite(ref_vec).all() and np.isfinite(got_vec).all()):
            reason = reason or "NaN/inf in session embeddings (the tower cannot handle a padded session?)"
            continue
        # A multi-interest file returns the interest that scored its top item: where the top items
        # differ (a tie within the numeric error; the overlap check judges those) so may the vectors.
        # A single-vector file's vector does not depend on the top item, so all of its rows count.
        compared = got_idx[:, 0] == ref_idx[:, 0] if multi_interest else slice(None)  # [B] or all
        emb_err = max(emb_err, float(np.abs(got_vec - ref_vec)[compared].max(initial=0.0)))
        both = np.isfinite(ref_scores) & np.isfinite(got_scores)
        if (np.isfinite(ref_scores) != np.isfinite(got_scores)).any():
            reason = reason or "masked (-inf) positions differ between onnxruntime and torch"
        err = float(np.abs(got_scores[both] - ref_scores[both]).max()) if both.any() else 0.0
        score_err = max(score_err, err)
        scale = float(np.abs(ref_scores[both]).max()) if both.any() else 1.0
        if err > tol.score_rtol * max(scale, 1.0):
            reason = reason or f"top score error {err:.3g} > {tol.score_rtol:g} x {scale:.3g}"
        tie_tol = 2 * err + 1e-6 * max(scale, 1.0)
        overlaps.append((*_overlap(ref_scores, ref_idx, got_idx, tie_tol), b))
    if emb_err > tol.embedding_atol:
        reason = reason or f"session embedding error {emb_err:.3g} > {tol.embedding_atol:g}"
    weight = sum(b for *_, b in overlaps) or 1
    overlap = sum(o * b for o, _, b in overlaps) / weight
    untied = sum(u * b for _, u, b in overlaps) / weight
    if overlaps and untied < 1.0:
        reason = reason or f"untied top-K overlap {untied:.4f} < 1"
    return ParityReport(variant, n_sessions, emb_err, score_err, overlap, untied, not reason, reason)
