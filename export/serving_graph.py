"""The exported serving chain as one torch module: gather -> session tower -> score -> mask -> TopK.

Exporting the whole chain (not just the tower) keeps it on the device: one onnxruntime call
returns K indices and scores, so per batch only B*K numbers cross back to the host instead of
the B*N score matrix (64 x 50k floats = 12.8 MB per batch at N = 50k).

The item matrix and the availability bias are graph *inputs*, not weights: a catalogue change
(new item, item withdrawn) rebinds two tensors and needs no re-export.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from streamrec.export.signature import INPUT_NAMES, OUTPUT_NAMES

__all__ = ["INPUT_NAMES", "OUTPUT_NAMES", "ServingGraph"]


class ServingGraph(nn.Module):
    """``forward(session_items [B,L] int64 rows, session_types [B,L] int64, session_mask [B,L] bool,
    item_matrix [N,d] float32, item_bias [N] float32, exclude_seen [] bool) -> (top_scores [B,K] float32,
    top_indices [B,K] int64, session_vec [B,d] float32)``.

    ``session_vec`` is an extra output beyond docs/contracts.md: the parity check compares
    embeddings on the shipped file itself, and callers that do not bind it do not pay for it.

    ``session_items`` are *rows* of ``item_matrix`` (the runner maps ids to rows); padded positions
    may hold any valid row (0) because the mask hides them from the tower and from seen-masking.
    ``half=True`` runs tower and scoring in float16 (the GPU variant) while keeping float32 inputs
    and outputs, so the runner feeds both variants the same way.
    """

    def __init__(self, session_tower: nn.Module, k: int, half: bool = False) -> None:
        super().__init__()
        # A copy for half: .half() converts in place and the caller's fp32 tower must stay fp32.
        self.tower = copy.deepcopy(session_tower).half() if half else session_tower
        self.k = k
        self.half = half

    def forward(
        self,
        session_items: torch.Tensor,
        session_types: torch.Tensor,
        session_mask: torch.Tensor,
        item_matrix: torch.Tensor,
        item_bias: torch.Tensor,
        exclude_seen: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        items = item_matrix.half() if self.half else item_matrix  # [N, d]
        item_vecs = items[session_items]  # [B, L, d]
        session_vec = self.tower(item_vecs, session_types, session_mask)  # [B, d]
        scores = (session_vec @ items.t()).float() + item_bias.unsqueeze(0)  # [B, N]
        # Seen items are masked among the best K + L candidates, not in the [B, N] matrix: at most
        # L of them can be seen, so the top K of what is left is exact, and the graph skips a
        # scatter that copies all B*N scores (14% of a batch of 170 at N = 50k on CPU).
        n_cand = torch.minimum(
            torch._shape_as_tensor(session_items)[1] + self.k, torch._shape_as_tensor(items)[0]
        )  # []: K + L, or N for a catalogue smaller than that; a tensor so it stays dynamic in ONNX
        cand_scores, cand_rows = torch.topk(scores, n_cand, dim=1)  # [B, C], [B, C]
        seen = session_mask & exclude_seen  # [B, L]
        hit = (cand_rows.unsqueeze(2) == session_items.unsqueeze(1)) & seen.unsqueeze(1)  # [B, C, L]
        cand_scores = cand_scores.masked_fill(hit.any(dim=2), float("-inf"))  # [B, C]
        top_scores, pos = torch.topk(cand_scores, self.k, dim=1)  # [B, K], [B, K]
        top_indices = cand_rows.gather(1, pos)  # [B, K]
        return top_scores, top_indices, session_vec.float()
