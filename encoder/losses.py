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
from torch.utils.checkpoint import checkpoint

from streamrec.encoder.interests import max_over_interests

# Largest [rows, candidates] logits block built at once (64 MiB of float32); larger losses are chunked.
MAX_LOGITS = 1 << 24


def next_item_infonce(
    sessions: torch.Tensor,
    target_rows: torch.Tensor,
    cand_vecs: torch.Tensor,
    log_q: torch.Tensor | None,
    temperature: float,
    exclude: tuple[torch.Tensor, torch.Tensor] | None = None,
    max_logits: int = MAX_LOGITS,
    hard: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """sessions [P, d] (normalised; or interests [P, M, d]: every candidate, the target included,
    scores by its nearest interest, as serving ranks), target_rows [P] int (row of each positive in the candidates),
    cand_vecs [C, d] (normalised, unique items), log_q [C] or None, exclude (rows [E], cols [E])
    int pairs or None (candidate ``cols[e]`` leaves the softmax of row ``rows[e]``; never a row's
    target; rows sorted), hard (vectors [P, H, d] normalised, log weights [P, H]) or None: each
    row's own extra negatives, their logits shifted by the log weight (-inf = padding, no term;
    streamrec.encoder.hard_negatives) -> mean loss (scalar).

    Candidates are unique, so a positive never also appears as its own negative. The [P, C]
    logits are built at most ``max_logits`` at a time: beyond that, row chunks are checkpointed
    (recomputed in the backward pass), so the exact softmax over 50k+ items needs memory for one
    chunk, not for [P, C]."""
    n_rows = sessions.shape[0]
    step = max(1, max_logits // max(cand_vecs.shape[0] * (sessions.shape[1] if sessions.dim() == 3 else 1), 1))
    scaled = sessions * (1.0 / temperature)  # [P, d]: cheaper than dividing [P, C] logits
    if n_rows <= step:
        return _cross_entropy_sum(scaled, target_rows, cand_vecs, log_q, exclude, 0, hard) / max(n_rows, 1)
    total = scaled.new_zeros(())
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        part = None
        if exclude is not None:
            lo, hi = torch.searchsorted(exclude[0], torch.tensor([start, stop], device=exclude[0].device)).tolist()
            part = (exclude[0][lo:hi], exclude[1][lo:hi])
        total = total + checkpoint(
            _cross_entropy_sum,
            scaled[start:stop],
            target_rows[start:stop],
            cand_vecs,
            log_q,
            part,
            start,
            None if hard is None else (hard[0][start:stop], hard[1][start:stop]),
            use_reentrant=False,
        )
    return total / n_rows


def _cross_entropy_sum(
    scaled: torch.Tensor,
    target_rows: torch.Tensor,
    cand_vecs: torch.Tensor,
    log_q: torch.Tensor | None,
    exclude: tuple[torch.Tensor, torch.Tensor] | None,
    row_offset: int,
    hard: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Summed softmax cross-entropy of one row chunk; ``exclude`` rows count from ``row_offset``,
    ``hard`` is the chunk's own."""
    logits = max_over_interests(scaled, cand_vecs.to(scaled.dtype))  # [p, C]
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)  # [p, C]
    if exclude is not None:
        logits = logits.index_put((exclude[0] - row_offset, exclude[1]), logits.new_tensor(float("-inf")))  # [p, C]
    if hard is not None:
        vecs, log_w = hard
        if scaled.dim() == 3:  # interests [p, M, d]: each hard negative's nearest one
            own = torch.einsum("pmd,phd->pmh", scaled, vecs.to(scaled.dtype)).amax(1) + log_w.to(scaled.dtype)
        else:
            own = torch.einsum("pd,phd->ph", scaled, vecs.to(scaled.dtype)) + log_w.to(scaled.dtype)  # [p, H]
        logits = torch.cat([logits, own], dim=1)  # [p, C + H]: targets still index the first C
    return F.cross_entropy(logits.float(), target_rows, reduction="sum")


def seen_pairs(
    hist_rows: torch.Tensor, mask: torch.Tensor, target_rows: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """hist_rows [B, L] candidate rows of each session's items, mask [B, L] bool, target_rows [P]
    (one per True of ``mask``, row-major) -> (rows [E], cols [E]) sorted by row: candidate ``cols``
    already occurs at or before that position (what serving masks out when ranking after it), and
    is not the position's target (a target that repeats an earlier item stays a target).

    Built from the [B, L, L] causal pairs, not a dense [B, L, C] mask: memory grows with the
    session length, not with the catalogue."""
    L = hist_rows.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool, device=mask.device).tril()  # [L, L]: key j <= query i
    keep = causal.unsqueeze(0) & mask.unsqueeze(1) & mask.unsqueeze(2)  # [B, L, L]
    row_of = torch.cumsum(mask.flatten(), 0).view_as(mask) - 1  # [B, L]: flat row of each valid position
    q_rows = row_of.unsqueeze(2).expand_as(keep)  # [B, L, L]
    cols = hist_rows.unsqueeze(1).expand_as(keep)  # [B, L, L]
    rows, cols = q_rows[keep], cols[keep]  # [E], [E] in row-major (query) order
    not_target = cols != target_rows[rows]  # [E]
    return rows[not_target], cols[not_target]


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


def same_target_contrastive(
    pool: torch.Tensor, pool_targets: torch.Tensor, anchor_rows: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Supervised contrastive views (DuoRec, Qiu et al., WSDM 2022; github.com/RuihongQiu/DuoRec,
    its ``sem_aug``): a session and another session with the same next item are positives.

    pool [P, d] (normalised session vectors of every position in the batch), pool_targets [P]
    (each one's next item), anchor_rows [A] (rows of ``pool`` used as anchors) -> scalar: each
    anchor must pick its same-target rows among all other rows of the pool (the log of the
    summed positive probability). DuoRec draws the positive from the whole training set and
    runs the tower on it again; here positives come from the batch's own positions, which costs
    one [A, P] matmul and no second forward pass. Anchors with no positive in the batch count 0."""
    sim = pool[anchor_rows] @ pool.T / temperature  # [A, P]
    self_mask = torch.zeros_like(sim, dtype=torch.bool)  # [A, P]
    self_mask[torch.arange(len(anchor_rows), device=sim.device), anchor_rows] = True
    sim = sim.float().masked_fill(self_mask, float("-inf"))  # [A, P]
    positive = (pool_targets[anchor_rows].unsqueeze(1) == pool_targets.unsqueeze(0)) & ~self_mask  # [A, P]
    has_pos = positive.any(dim=1)  # [A]
    if not bool(has_pos.any()):
        return sim.new_zeros(())
    log_all = torch.logsumexp(sim, dim=1)  # [A]
    log_pos = torch.logsumexp(sim.masked_fill(~positive, float("-inf")), dim=1)  # [A]
    return (log_all - log_pos)[has_pos].sum() / len(anchor_rows)
