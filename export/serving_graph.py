"""The exported serving chain as one torch module: gather -> session tower -> score -> mask -> TopK.

Exporting the whole chain (not just the tower) keeps it on the device: one onnxruntime call
returns K indices and scores, so per batch only B*K numbers cross back to the host instead of
the B*N score matrix (64 x 50k floats = 12.8 MB per batch at N = 50k).

The item matrix and the availability bias are graph *inputs*, not weights: a catalogue change
(new item, item withdrawn) rebinds two tensors and needs no re-export.

The hybrid's co-occurrence bonus (streamrec.cooccurrence) enters as two sparse inputs,
``bonus_rows [B, C]`` and ``bonus_values [B, C]``, scatter-added to the scores before the
availability mask takes effect, seen-masking and TopK: the whole chain stays one graph on the
serving device, and an item with a zero vector (known only from events) can still rank by its
bonus. Repeated rows add up; an empty bonus (C = 0) leaves the model's scores.

The int8 variant (CPU serving) ranks the whole catalogue by an integer matmul against int8 item
codes (:func:`streamrec.serving.item_index.quantize_items`), keeps the best ``2 (K + L)``
candidates, and re-scores those exactly in fp32: the scores it returns are the fp32 scores, and
its top K differs from fp32 only if an item of the true top K ranked below ``2 (K + L)`` by its
int8 score. At 50k items x d=128 the matmul and TopK take 20 ms instead of 36 (batch 180, one
core, measured here).

A multi-interest tower (``ModelConfig.interests`` M > 1, :mod:`streamrec.encoder.interests`)
returns [B, M, d]: each item scores by its best interest, in the graph, before the bias, the
bonus, seen-masking and TopK (the int8 variant ranks and re-scores by the same maximum). The
third output is then the interest that scored the top item, the one that explains the head of
the feed. With M = 1 the graph is the single-vector chain, op for op.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from streamrec.encoder.interests import best_of_interests, max_over_interests, nearest_interest
from streamrec.serving.signature import INPUT_NAMES, INT8_INPUTS, OUTPUT_NAMES

__all__ = ["INPUT_NAMES", "INT8_INPUTS", "OUTPUT_NAMES", "ServingGraph"]


class Int8Scores(torch.autograd.Function):
    """``vec [B, d] float32 @ (codes [d, N] int8 * scales [N]) + bias [N]`` the way onnxruntime's
    DynamicQuantizeMatMul computes it: ``vec`` quantized to uint8 per tensor, an int32 matmul,
    one float scale per item, the bias added in the same pass (as a separate Add it cost as much
    as the matmul: one more pass over B x N). Eager torch emulates it (float64 holds the int32
    sums exactly) so the exported file can be checked against it."""

    @staticmethod
    def forward(
        ctx: object,
        vec: torch.Tensor,
        codes: torch.Tensor,
        scales: torch.Tensor,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        lo, hi = torch.clamp(vec.min(), max=0.0), torch.clamp(vec.max(), min=0.0)
        scale = (hi - lo) / 255.0
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero = torch.clamp(torch.round(-lo / scale), 0, 255)
        q = torch.clamp(torch.round(vec / scale) + zero, 0, 255)
        acc = (q.double() - zero.double()) @ codes.double()  # [B, N], exact integers
        return acc.float() * (scale * scales) + bias

    @staticmethod
    def symbolic(
        g: torch.Graph, vec: torch.Value, codes: torch.Value, scales: torch.Value, bias: torch.Value
    ) -> torch.Value:
        zero = g.op("Constant", value_t=torch.tensor(0, dtype=torch.int8))  # symmetric item codes
        scores = g.op("com.microsoft::DynamicQuantizeMatMul", vec, codes, scales, zero, bias)
        scores.setType(vec.type().with_sizes([None, None]))  # [B, N] float32: the exporter cannot infer it
        return scores


class ServingGraph(nn.Module):
    """``forward(session_items [B,L] int64 rows, session_types [B,L] int64, session_mask [B,L] bool,
    item_matrix [N,d] float32, item_bias [N] float32, exclude_seen [] bool, bonus_rows [B,C] int64,
    bonus_values [B,C] float32) -> (top_scores [B,K] float32, top_indices [B,K] int64, session_vec
    [B,d] float32)``; with ``int8=True`` (onnxruntime's CPU contrib op) two more inputs follow,
    ``item_codes [d,N] int8, item_scales [N] float32``. Eager callers may leave the bonus out.

    ``session_vec`` is an extra output beyond docs/contracts.md: the parity check compares
    embeddings on the shipped file itself, and callers that do not bind it do not pay for it.

    ``session_items`` are *rows* of ``item_matrix`` (the runner maps ids to rows); padded positions
    may hold any valid row (0) because the mask hides them from the tower and from seen-masking.
    ``half=True`` runs tower and scoring in float16 (the GPU variant) while keeping float32 inputs
    and outputs, so the runner feeds both variants the same way.
    """

    def __init__(self, session_tower: nn.Module, k: int, half: bool = False, int8: bool = False) -> None:
        super().__init__()
        if half and int8:
            raise ValueError("the serving graph is either fp16 (GPU) or int8 (CPU), not both")
        # A copy for half: .half() converts in place and the caller's fp32 tower must stay fp32.
        self.tower = copy.deepcopy(session_tower).half() if half else session_tower
        self.k = k
        self.half = half
        self.int8 = int8

    def forward(
        self,
        session_items: torch.Tensor,
        session_types: torch.Tensor,
        session_mask: torch.Tensor,
        item_matrix: torch.Tensor,
        item_bias: torch.Tensor,
        exclude_seen: torch.Tensor,
        bonus_rows: torch.Tensor | None = None,
        bonus_values: torch.Tensor | None = None,
        item_codes: torch.Tensor | None = None,
        item_scales: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        items = item_matrix.half() if self.half else item_matrix  # [N, d]
        item_vecs = items[session_items]  # [B, L, d]
        session_vec = self.tower(item_vecs, session_types, session_mask)  # [B, d], or interests [B, M, d]
        m = session_vec.shape[1] if session_vec.dim() == 3 else 1  # a Python int: traced as a constant
        n_items = torch._shape_as_tensor(items)[0]
        seq = torch._shape_as_tensor(session_items)[1]
        # Seen items are masked among the best K + L candidates, not in the [B, N] matrix: at most
        # L of them can be seen, so the top K of what is left is exact, and the graph skips a
        # scatter that copies all B*N scores (14% of a batch of 170 at N = 50k on CPU).
        # Counts are tensors so they stay dynamic in ONNX.
        if self.int8:
            if item_codes is None or item_scales is None:
                raise ValueError("the int8 serving graph needs item_codes and item_scales")
            flat = session_vec.flatten(0, 1) if m > 1 else session_vec  # [B*M, d]
            approx = best_of_interests(Int8Scores.apply(flat, item_codes, item_scales, item_bias), m)  # [B, N]
            bonus = None
            if bonus_rows is not None and bonus_values is not None:
                bonus = torch.zeros_like(approx).scatter_add(1, bonus_rows, bonus_values)  # [B, N]
                approx = approx + bonus
            _, cand_rows = torch.topk(approx, torch.minimum(2 * (seq + self.k), n_items), dim=1)  # [B, C]
            # exact fp32 scores of the candidates: [B, C, d] x [B, d, 1], or each one's best of M interests
            cand = items[cand_rows]  # [B, C, d]
            if m > 1:
                exact = (cand @ session_vec.transpose(1, 2)).amax(2)  # [B, C, M] -> [B, C]
            else:
                exact = (cand @ session_vec.unsqueeze(2)).squeeze(2)  # [B, C]
            cand_scores = exact.float() + item_bias[cand_rows]  # [B, C]
            if bonus is not None:
                cand_scores = cand_scores + bonus.gather(1, cand_rows)
        else:
            scores = max_over_interests(session_vec, items).float() + item_bias.unsqueeze(0)  # [B, N]
            if bonus_rows is not None and bonus_values is not None:
                scores = scores.scatter_add(1, bonus_rows, bonus_values)  # [B, N]: -inf (unavailable) stays -inf
            cand_scores, cand_rows = torch.topk(scores, torch.minimum(seq + self.k, n_items), dim=1)  # [B, C]
        seen = session_mask & exclude_seen  # [B, L]
        hit = (cand_rows.unsqueeze(2) == session_items.unsqueeze(1)) & seen.unsqueeze(1)  # [B, C, L]
        cand_scores = cand_scores.masked_fill(hit.any(dim=2), float("-inf"))  # [B, C]
        top_scores, pos = torch.topk(cand_scores, self.k, dim=1)  # [B, K], [B, K]
        top_indices = cand_rows.gather(1, pos)  # [B, K]
        if m > 1:
            session_vec = nearest_interest(session_vec, items[top_indices[:, 0]])  # [B, d]: the top item's interest
        return top_scores, top_indices, session_vec.float()
