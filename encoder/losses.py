"""Training objectives.

Next-item InfoNCE over a candidate set made of the batch's own items (in-batch negatives,
drawn by popularity) plus uniformly sampled ones, with logQ correction: subtracting the log of
each candidate's expected count in the set removes the popularity bias that in-batch sampling
would otherwise bake into the scores (Yi et al., RecSys 2019), so the sampled loss estimates the
full-catalogue softmax. The self-supervised term pulls two augmented views of a session
together (CL4SRec-style), which helps short and sparse histories.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def next_item_infonce(
    sessions: torch.Tensor,
    target_rows: torch.Tensor,
    cand_vecs: torch.Tensor,
    log_q: torch.Tensor | None,
    temperature: float,
    exclude: torch.Tensor | None = None,
) -> torch.Tensor:
    """sessions [P, d] (normalised), target_rows [P] int (row of each positive in the candidates),
    cand_vecs [C, d] (normalised, unique items), log_q [C] or None, exclude [P, C] bool or None
    (candidates left out of a row's softmax; never its target) -> mean loss (scalar).

    Candidates are unique, so a positive never also appears as its own negative."""
    logits = sessions @ cand_vecs.T / temperature  # [P, C]
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)  # [P, C]
    if exclude is not None:
        logits = logits.masked_fill(exclude, float("-inf"))  # [P, C]
    return F.cross_entropy(logits, target_rows)


def seen_so_far(hist_rows: torch.Tensor, mask: torch.Tensor, n_cand: int) -> torch.Tensor:
    """hist_rows [B, L] candidate rows of each session's items, mask [B, L] bool -> [B, L, C] bool:
    True where candidate c already occurs at or before position i of session b (what serving
    masks out when ranking after position i)."""
    B, L = hist_rows.shape
    pos = torch.arange(L, device=hist_rows.device).expand(B, L)  # [B, L]
    pos = torch.where(mask, pos, torch.full_like(pos, L))  # [B, L]; padding counts as never
    first = torch.full((B, n_cand), L, dtype=torch.long, device=hist_rows.device)  # [B, C]
    first = first.scatter_reduce(1, hist_rows, pos, reduce="amin")  # [B, C] first position of c
    return first.unsqueeze(1) <= torch.arange(L, device=hist_rows.device).view(1, L, 1)  # [B, L, C]


def candidate_log_q(pop: torch.Tensor, n_batch_slots: int, n_uniform: int, n_items: int) -> torch.Tensor:
    """log of each candidate's probability of being in the (deduplicated) candidate set.

    Expected draws of c: lambda = pop_c * popularity-drawn slots + uniform slots / N. Candidates
    are unique, so the inclusion probability is 1 - exp(-lambda), not lambda: a popular item that
    is certainly in the set must not be penalised (with lambda it would lose log(64) ~ 4 nats on
    ml-100k-sized batches, and the learned scores would over-recommend popular items)."""
    lam = pop * n_batch_slots + n_uniform / n_items  # [C]
    return torch.log(-torch.expm1(-lam) + 1e-12)  # [C]


def session_contrastive(view_a: torch.Tensor, view_b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Two views [B, d] (normalised) of the same sessions: each view must pick its twin among the
    batch's other sessions (symmetric InfoNCE) -> scalar."""
    logits = view_a @ view_b.T / temperature  # [B, B]
    labels = torch.arange(view_a.shape[0], device=view_a.device)  # [B]
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
